//! The parsed form of a `#[derive(Replicate)]` item: its name, its wire fields and how each one
//! is encoded. All checking happens here, while parsing; generating code from a [`Component`]
//! cannot fail.

use quote::quote;
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::{
    Attribute, Data, DataEnum, DeriveInput, Error, Fields, Generics, Ident, LitStr, Member, Path,
    Result, Type,
};

use crate::quantize_attr::{Quantize, parse_quantize};

/// The name of the container attribute, `#[replicate(...)]`.
const REPLICATE: &str = "replicate";
/// The name of the field attribute, `#[quantize(...)]`.
const QUANTIZE: &str = "quantize";

/// The encodings `#[quantize(...)]` accepts, for error messages.
pub(crate) const ENCODINGS: &str =
    "`position`, `angle`, `scale = N`, `range = LO..=HI` or `modulo = M`";
/// The field types the derive knows, for error messages.
const SUPPORTED_TYPES: &str = "u8, u16, u32, i8, i16, i32, bool, f32 or Vec2";
/// The largest magnitude of an `f32` range bound: every integer up to it is exact in `f32`.
const F32_EXACT: i32 = 1 << 24;

/// A type deriving `Replicate`, ready for code generation.
pub(crate) struct Component {
    /// The type's identifier.
    pub(crate) ident: Ident,
    /// The type's generics, carried over to the impl.
    pub(crate) generics: Generics,
    /// The path generated code reaches the shared crate through (`::tickwire_shared`).
    pub(crate) krate: Path,
    /// `Replicate::NAME`.
    pub(crate) name: String,
    /// What is sent.
    pub(crate) body: Body,
}

/// What a component sends.
pub(crate) enum Body {
    /// A struct's fields, in declaration order, which is the wire order.
    Struct(Vec<Field>),
    /// A field-less enum: one Int wire field holding the index of the variant.
    Enum {
        /// The wire field's name.
        field: String,
        /// The variants in declaration order (index 0 first; unknown indices read as it).
        variants: Vec<Ident>,
    },
}

/// One replicated struct field.
pub(crate) struct Field {
    /// How the field is reached: `self.foo` or `self.0`.
    pub(crate) member: Member,
    /// Its wire names, which also say whether it is one value or a `Vec2`.
    pub(crate) shape: Shape,
    /// How each of its values (a scalar, or the x and y of a `Vec2`) is quantized.
    pub(crate) encoding: Encoding,
}

/// A field's wire names.
pub(crate) enum Shape {
    /// One value, one wire field.
    Scalar(String),
    /// A `Vec2`: two wire fields, x then y, encoded alike.
    Vec2([String; 2]),
}

/// How one value is quantized to an `i32` and read back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Encoding {
    /// An integer sent as it is (a bit cast for `u32`), read back clamped to its type.
    Int(IntTy),
    /// A `bool` sent as 0 or 1; any non-zero value reads as `true`.
    Bool,
    /// An integer clamped to `lo..=hi` both ways.
    IntRange {
        /// The field's type.
        ty: IntTy,
        /// The smallest value sent.
        lo: i32,
        /// The largest value sent.
        hi: i32,
    },
    /// An integer sent modulo `modulus` (`rem_euclid`) both ways.
    IntModulo {
        /// The field's type.
        ty: IntTy,
        /// The modulus, positive; `modulus - 1` fits in `ty`.
        modulus: i32,
    },
    /// An `f32` rounded to an integer and clamped to `lo..=hi` (both within ±2^24).
    FloatRange {
        /// The smallest value sent.
        lo: i32,
        /// The largest value sent.
        hi: i32,
    },
    /// An `f32` on the shared crate's position grid (`quantize::position`).
    Position,
    /// An `f32` angle in radians as 16 bits (`quantize::angle`), an Angle wire field.
    Angle,
    /// An `f32` multiplied by the scale and rounded.
    Scale(f32),
}

impl Encoding {
    /// Whether the wire field is an Angle field rather than an Int one.
    pub(crate) fn is_angle(self) -> bool {
        matches!(self, Encoding::Angle)
    }

    /// How the field is quantized, for people (the schema a mismatched client is shown) and
    /// the registry's fingerprint.
    pub(crate) fn describe(self) -> String {
        match self {
            Encoding::Int(ty) => ty.name().to_owned(),
            Encoding::Bool => "bool".to_owned(),
            Encoding::IntRange { ty, lo, hi } => format!("{} in {lo}..={hi}", ty.name()),
            Encoding::IntModulo { ty, modulus } => format!("{} modulo {modulus}", ty.name()),
            Encoding::FloatRange { lo, hi } => format!("f32 rounded, in {lo}..={hi}"),
            Encoding::Position => "f32 on the 1/64 position grid".to_owned(),
            Encoding::Angle => "f32 radians as 16 bits".to_owned(),
            Encoding::Scale(scale) => format!("f32 × {scale}, rounded"),
        }
    }
}

/// The integer types a field can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntTy {
    U8,
    U16,
    U32,
    I8,
    I16,
    I32,
}

impl IntTy {
    /// The type's name, as written in Rust.
    pub(crate) fn name(self) -> &'static str {
        match self {
            IntTy::U8 => "u8",
            IntTy::U16 => "u16",
            IntTy::U32 => "u32",
            IntTy::I8 => "i8",
            IntTy::I16 => "i16",
            IntTy::I32 => "i32",
        }
    }

    /// The type's smallest value.
    fn min(self) -> i64 {
        match self {
            IntTy::U8 | IntTy::U16 | IntTy::U32 => 0,
            IntTy::I8 => i64::from(i8::MIN),
            IntTy::I16 => i64::from(i16::MIN),
            IntTy::I32 => i64::from(i32::MIN),
        }
    }

    /// The type's largest value.
    fn max(self) -> i64 {
        match self {
            IntTy::U8 => i64::from(u8::MAX),
            IntTy::U16 => i64::from(u16::MAX),
            IntTy::U32 => i64::from(u32::MAX),
            IntTy::I8 => i64::from(i8::MAX),
            IntTy::I16 => i64::from(i16::MAX),
            IntTy::I32 => i64::from(i32::MAX),
        }
    }
}

/// A field's type, as far as the derive cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldTy {
    Int(IntTy),
    Bool,
    F32,
    Vec2,
}

impl FieldTy {
    /// Recognises a type by the last segment of its path (`u16`, `glam::Vec2`, ...).
    fn of(ty: &Type) -> Option<FieldTy> {
        let path = match ty {
            Type::Path(p) if p.qself.is_none() => &p.path,
            Type::Group(g) => return FieldTy::of(&g.elem),
            Type::Paren(p) => return FieldTy::of(&p.elem),
            _ => return None,
        };
        let last = path.segments.last()?;
        if !last.arguments.is_none() {
            return None;
        }
        Some(match last.ident.to_string().as_str() {
            "u8" => FieldTy::Int(IntTy::U8),
            "u16" => FieldTy::Int(IntTy::U16),
            "u32" => FieldTy::Int(IntTy::U32),
            "i8" => FieldTy::Int(IntTy::I8),
            "i16" => FieldTy::Int(IntTy::I16),
            "i32" => FieldTy::Int(IntTy::I32),
            "bool" => FieldTy::Bool,
            "f32" => FieldTy::F32,
            "Vec2" => FieldTy::Vec2,
            _ => return None,
        })
    }

    /// The type's name, for error messages.
    fn name(self) -> &'static str {
        match self {
            FieldTy::Int(ty) => ty.name(),
            FieldTy::Bool => "bool",
            FieldTy::F32 => "f32",
            FieldTy::Vec2 => "Vec2",
        }
    }
}

/// The `#[replicate(...)]` attributes of the type.
#[derive(Default)]
struct ContainerAttrs {
    /// `crate = "path"`.
    krate: Option<Path>,
    /// `name = "..."`.
    name: Option<String>,
    /// `field = "..."`, kept as a literal to point errors at it.
    field: Option<LitStr>,
}

impl ContainerAttrs {
    /// Reads every `#[replicate(...)]` of the type; refuses `#[quantize(...)]` there.
    fn parse(attrs: &[Attribute]) -> Result<ContainerAttrs> {
        let mut out = ContainerAttrs::default();
        for attr in attrs {
            if attr.path().is_ident(QUANTIZE) {
                return Err(Error::new_spanned(
                    attr,
                    "#[quantize(...)] goes on a field, not on the type",
                ));
            }
            if !attr.path().is_ident(REPLICATE) {
                continue;
            }
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("crate") {
                    let lit = string_value(&meta, out.krate.is_some())?;
                    let path = lit.parse().map_err(|_| {
                        Error::new(lit.span(), "expected a path: `crate = \"crate::shared\"`")
                    })?;
                    out.krate = Some(path);
                } else if meta.path.is_ident("name") {
                    out.name = Some(string_value(&meta, out.name.is_some())?.value());
                } else if meta.path.is_ident("field") {
                    out.field = Some(string_value(&meta, out.field.is_some())?);
                } else {
                    return Err(meta.error(
                        "unknown replicate attribute; expected `name = \"...\"`, \
                         `field = \"...\"` or `crate = \"...\"`",
                    ));
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}

/// The non-empty string value of a `key = "..."` item that must appear once.
fn string_value(meta: &ParseNestedMeta<'_>, seen: bool) -> Result<LitStr> {
    if seen {
        return Err(meta.error("this replicate attribute is given twice"));
    }
    let lit: LitStr = meta.value()?.parse()?;
    if lit.value().is_empty() {
        return Err(Error::new(lit.span(), "expected a non-empty string"));
    }
    Ok(lit)
}

/// Collects errors, so that every bad field is reported at once.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

impl Component {
    /// Parses and checks a `#[derive(Replicate)]` input.
    pub(crate) fn parse(input: DeriveInput) -> Result<Component> {
        let attrs = ContainerAttrs::parse(&input.attrs)?;
        let type_name = input.ident.unraw().to_string();
        let default_field = || type_name.to_lowercase();
        let body = match input.data {
            Data::Struct(data) => {
                Body::Struct(parse_struct(&input.ident, data.fields, attrs.field, default_field())?)
            }
            Data::Enum(data) => parse_enum(&input.ident, data, attrs.field, default_field())?,
            Data::Union(data) => {
                let union_token = data.union_token;
                let ident = &input.ident;
                return Err(Error::new_spanned(
                    quote!(#union_token #ident),
                    "Replicate cannot be derived for a union; use a struct or a field-less enum",
                ));
            }
        };
        Ok(Component {
            krate: attrs.krate.unwrap_or_else(|| syn::parse_quote!(::tickwire_shared)),
            name: attrs.name.unwrap_or(type_name),
            ident: input.ident,
            generics: input.generics,
            body,
        })
    }
}

/// The fields of a struct with named fields or a tuple struct.
fn parse_struct(
    ident: &Ident,
    fields: Fields,
    field_attr: Option<LitStr>,
    default_name: String,
) -> Result<Vec<Field>> {
    let fields = match fields {
        Fields::Named(fields) => fields.named,
        Fields::Unnamed(fields) => fields.unnamed,
        Fields::Unit => {
            return Err(Error::new_spanned(
                ident,
                "Replicate needs at least one field to send; a unit struct has none",
            ));
        }
    };
    if fields.is_empty() {
        return Err(Error::new_spanned(
            ident,
            "Replicate needs at least one field to send; this struct has none",
        ));
    }
    let lone_tuple_field = fields.len() == 1 && fields[0].ident.is_none();
    if let Some(lit) = &field_attr
        && !lone_tuple_field
    {
        return Err(Error::new(
            lit.span(),
            "`field = \"...\"` names the only field of a one-field tuple struct or of a \
             field-less enum; named fields use their own names and other tuple fields their index",
        ));
    }
    let mut errors = Errors::default();
    let mut out = Vec::with_capacity(fields.len());
    for (index, field) in fields.iter().enumerate() {
        // The wire name; `None` is a one-field tuple struct's field with no `field = "..."`.
        let name = match &field.ident {
            Some(ident) => Some(ident.unraw().to_string()),
            None if lone_tuple_field => field_attr.as_ref().map(LitStr::value),
            None => Some(index.to_string()),
        };
        let member = match &field.ident {
            Some(ident) => Member::Named(ident.clone()),
            None => Member::Unnamed(index.into()),
        };
        match parse_field_encoding(field) {
            Ok((encoding, is_vec2)) => {
                let shape = match (is_vec2, name) {
                    (true, Some(name)) => Shape::Vec2([format!("{name}.x"), format!("{name}.y")]),
                    (true, None) => Shape::Vec2(["x".to_owned(), "y".to_owned()]),
                    (false, name) => Shape::Scalar(name.unwrap_or_else(|| default_name.clone())),
                };
                out.push(Field { member, shape, encoding });
            }
            Err(error) => errors.push(error),
        }
    }
    errors.finish()?;
    Ok(out)
}

/// A field-less enum.
fn parse_enum(
    ident: &Ident,
    data: DataEnum,
    field_attr: Option<LitStr>,
    default_name: String,
) -> Result<Body> {
    if data.variants.is_empty() {
        return Err(Error::new_spanned(
            ident,
            "Replicate needs at least one variant: an enum without variants has no value to \
             read back",
        ));
    }
    let mut errors = Errors::default();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            errors.push(Error::new_spanned(
                variant,
                "Replicate on an enum needs field-less variants (only the variant is sent); \
                 put data in a struct",
            ));
        }
        for attr in &variant.attrs {
            if attr.path().is_ident(QUANTIZE) || attr.path().is_ident(REPLICATE) {
                errors.push(Error::new_spanned(
                    attr,
                    "a variant takes no attributes: an enum sends the index of its variant",
                ));
            }
        }
    }
    errors.finish()?;
    Ok(Body::Enum {
        field: field_attr.map_or(default_name, |lit| lit.value()),
        variants: data.variants.into_iter().map(|v| v.ident).collect(),
    })
}

/// A field's encoding, from its type and `#[quantize(...)]`, and whether it is a `Vec2`.
fn parse_field_encoding(field: &syn::Field) -> Result<(Encoding, bool)> {
    let mut quantize: Option<(Quantize, &Attribute)> = None;
    for attr in &field.attrs {
        if attr.path().is_ident(REPLICATE) {
            return Err(Error::new_spanned(
                attr,
                "#[replicate(...)] goes on the type; a field takes #[quantize(...)]",
            ));
        }
        if attr.path().is_ident(QUANTIZE) {
            if quantize.is_some() {
                return Err(Error::new_spanned(attr, "a field takes one #[quantize(...)]"));
            }
            quantize = Some((parse_quantize(attr)?, attr));
        }
    }
    let Some(ty) = FieldTy::of(&field.ty) else {
        return Err(Error::new_spanned(
            &field.ty,
            format!(
                "unsupported field type: a replicated field must be {SUPPORTED_TYPES} \
                 (for anything else, implement Replicate by hand)"
            ),
        ));
    };
    let Some((how, attr)) = quantize else {
        return match ty {
            FieldTy::Int(int) => Ok((Encoding::Int(int), false)),
            FieldTy::Bool => Ok((Encoding::Bool, false)),
            FieldTy::F32 => Err(Error::new_spanned(
                &field.ty,
                "f32 needs #[quantize(...)]: position, angle, scale = N or range = LO..=HI",
            )),
            FieldTy::Vec2 => Err(Error::new_spanned(
                &field.ty,
                "Vec2 needs #[quantize(...)]: position or scale = N",
            )),
        };
    };
    let encoding = match (ty, how) {
        (FieldTy::F32 | FieldTy::Vec2, Quantize::Position) => Encoding::Position,
        (FieldTy::F32, Quantize::Angle) => Encoding::Angle,
        (FieldTy::F32 | FieldTy::Vec2, Quantize::Scale(scale)) => Encoding::Scale(scale),
        (FieldTy::F32, Quantize::Range { lo, hi }) => {
            if lo < -F32_EXACT || hi > F32_EXACT {
                return Err(Error::new_spanned(
                    attr,
                    format!(
                        "the range of an f32 field must lie within -{F32_EXACT}..={F32_EXACT} \
                         (2^24), where every integer is exact in f32"
                    ),
                ));
            }
            Encoding::FloatRange { lo, hi }
        }
        (FieldTy::Int(int), Quantize::Range { lo, hi }) => {
            if i64::from(lo) < int.min() || i64::from(hi) > int.max() {
                return Err(Error::new_spanned(
                    attr,
                    format!(
                        "range {lo}..={hi} does not fit in {} ({}..={})",
                        int.name(),
                        int.min(),
                        int.max()
                    ),
                ));
            }
            Encoding::IntRange { ty: int, lo, hi }
        }
        (FieldTy::Int(int), Quantize::Modulo(modulus)) => {
            if i64::from(modulus) - 1 > int.max() {
                return Err(Error::new_spanned(
                    attr,
                    format!(
                        "modulo {modulus} does not fit in {}: its values 0..={} must fit in \
                         0..={}",
                        int.name(),
                        modulus - 1,
                        int.max()
                    ),
                ));
            }
            Encoding::IntModulo { ty: int, modulus }
        }
        (FieldTy::Bool, _) => {
            return Err(Error::new_spanned(
                attr,
                "a bool field takes no #[quantize(...)]: it is sent as 0 or 1",
            ));
        }
        (ty, how) => {
            return Err(Error::new_spanned(
                attr,
                format!(
                    "`{}` cannot encode a field of type {}; it applies to {}",
                    how.key(),
                    ty.name(),
                    how.applies_to()
                ),
            ));
        }
    };
    Ok((encoding, ty == FieldTy::Vec2))
}
