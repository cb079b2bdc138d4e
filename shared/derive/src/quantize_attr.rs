//! The `#[quantize(...)]` field attribute: parsed into a [`Quantize`], checked against the
//! field's type by the model.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::{Attribute, Error, Lit, LitInt, Result, Token};

use super::model::ENCODINGS;

/// A `#[quantize(...)]` attribute, parsed but not yet checked against the field's type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Quantize {
    Position,
    Angle,
    Scale(f32),
    Range { lo: i32, hi: i32 },
    Modulo(i32),
}

impl Quantize {
    /// The attribute's key.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Quantize::Position => "position",
            Quantize::Angle => "angle",
            Quantize::Scale(_) => "scale",
            Quantize::Range { .. } => "range",
            Quantize::Modulo(_) => "modulo",
        }
    }

    /// The field types the encoding applies to, for error messages.
    pub(crate) fn applies_to(self) -> &'static str {
        match self {
            Quantize::Position | Quantize::Scale(_) => "f32 and Vec2 fields",
            Quantize::Angle => "f32 fields",
            Quantize::Range { .. } => "f32 and integer (u8, u16, u32, i8, i16, i32) fields",
            Quantize::Modulo(_) => "integer (u8, u16, u32, i8, i16, i32) fields",
        }
    }
}

/// Parses the inside of `#[quantize(...)]`: exactly one encoding.
pub(crate) fn parse_quantize(attr: &Attribute) -> Result<Quantize> {
    let mut found: Option<Quantize> = None;
    attr.parse_nested_meta(|meta| {
        let how = if meta.path.is_ident("position") {
            no_value(&meta)?;
            Quantize::Position
        } else if meta.path.is_ident("angle") {
            no_value(&meta)?;
            Quantize::Angle
        } else if meta.path.is_ident("scale") {
            Quantize::Scale(parse_scale(meta.value()?)?)
        } else if meta.path.is_ident("range") {
            parse_range(meta.value()?)?
        } else if meta.path.is_ident("modulo") {
            Quantize::Modulo(parse_modulo(meta.value()?)?)
        } else if meta.path.is_ident("skip") {
            return Err(meta.error(
                "`skip` is not supported: every field of a replicated component is sent; \
                 move state that is not replicated to a component of its own",
            ));
        } else {
            return Err(meta.error(format!("unknown encoding; expected one of {ENCODINGS}")));
        };
        if found.is_some() {
            return Err(meta.error("a field takes exactly one encoding"));
        }
        found = Some(how);
        Ok(())
    })?;
    found.ok_or_else(|| {
        Error::new_spanned(attr, format!("expected an encoding: one of {ENCODINGS}"))
    })
}

/// Refuses `key = value` for a key that takes no value.
pub(crate) fn no_value(meta: &ParseNestedMeta<'_>) -> Result<()> {
    if meta.input.peek(Token![=]) {
        return Err(meta.error("this encoding takes no value"));
    }
    Ok(())
}

/// `scale = N`: a positive int or float literal that is a normal `f32`.
fn parse_scale(input: ParseStream<'_>) -> Result<f32> {
    let error = |span: Span| Error::new(span, "expected a positive number: `scale = 100.0`");
    if input.peek(Token![-]) {
        return Err(error(input.span()));
    }
    let lit: Lit = input.parse()?;
    let value: f64 = match &lit {
        Lit::Int(int) => int.base10_parse()?,
        Lit::Float(float) => float.base10_parse()?,
        _ => return Err(error(lit.span())),
    };
    let scale = value as f32;
    if !(scale.is_normal() && scale > 0.0) {
        return Err(Error::new(
            lit.span(),
            "the scale must be positive and within the normal range of f32",
        ));
    }
    Ok(scale)
}

/// `range = LO..=HI`: two integer literals (each may be negative), `LO <= HI`.
fn parse_range(input: ParseStream<'_>) -> Result<Quantize> {
    const EXPECTED: &str = "expected an integer literal: `range = LO..=HI`";
    let lo = parse_i32(input, EXPECTED)?.0;
    if !input.peek(Token![..=]) {
        let message = if input.peek(Token![..]) {
            "use an inclusive range: `range = LO..=HI`"
        } else {
            "expected `..=`: `range = LO..=HI`"
        };
        return Err(Error::new(input.span(), message));
    }
    input.parse::<Token![..=]>()?;
    let (hi, hi_span) = parse_i32(input, EXPECTED)?;
    if lo > hi {
        return Err(Error::new(hi_span, format!("empty range: {lo} is greater than {hi}")));
    }
    Ok(Quantize::Range { lo, hi })
}

/// `modulo = M`: an integer literal in `1..=i32::MAX`.
fn parse_modulo(input: ParseStream<'_>) -> Result<i32> {
    let (modulus, span) = parse_i32(input, "expected a positive integer literal: `modulo = M`")?;
    if modulus <= 0 {
        return Err(Error::new(span, "the modulus must be positive"));
    }
    Ok(modulus)
}

/// An integer literal that fits in `i32`, with an optional leading `-`; `expected` is the
/// error when there is none.
fn parse_i32(input: ParseStream<'_>, expected: &str) -> Result<(i32, Span)> {
    let minus: Option<Token![-]> = input.parse()?;
    let lit: LitInt = input.parse().map_err(|error| Error::new(error.span(), expected))?;
    let magnitude: i64 = lit.base10_parse()?;
    let value = if minus.is_some() { -magnitude } else { magnitude };
    let value = i32::try_from(value)
        .map_err(|_| Error::new(lit.span(), format!("{value} does not fit in i32")))?;
    Ok((value, lit.span()))
}
