//! Code generation: the `Replicate` impl of a parsed [`Component`].
//!
//! Every path in the generated code is absolute (`::core::primitive::i32`, `#krate::...`), so
//! it means the same thing whatever the user's module has in scope.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use syn::Path;

use crate::model::{Body, Component, Encoding, Field, IntTy, Shape};

/// `::core::primitive::NAME`.
fn primitive(name: &str) -> TokenStream {
    let ident = format_ident!("{name}");
    quote!(::core::primitive::#ident)
}

/// The `Replicate` impl of `component`.
pub(crate) fn expand(component: &Component) -> TokenStream {
    let Component { ident, generics, krate, name, body } = component;
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let i32_ = primitive("i32");
    let (specs, quantize, dequantize) = match body {
        Body::Struct(fields) => expand_struct(krate, fields),
        Body::Enum { field, variants } => {
            let names: Vec<String> = variants.iter().map(ToString::to_string).collect();
            let described = format!("one of {}", names.join(" | "));
            let spec = quote!(#krate::registry::FieldSpec::int(#field).quantized(#described));
            let indices = (0..variants.len()).map(Literal::usize_unsuffixed);
            let first = &variants[0];
            let others = variants.iter().enumerate().skip(1).map(|(index, variant)| {
                let index = Literal::usize_unsuffixed(index);
                quote!(#index => Self::#variant,)
            });
            let quantize = quote! {
                out[0] = match self {
                    #(Self::#variants => #indices,)*
                };
            };
            let dequantize = quote! {
                match fields[0] {
                    #(#others)*
                    _ => Self::#first,
                }
            };
            (vec![spec], quantize, dequantize)
        }
    };
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::registry::Replicate for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            const FIELDS: &'static [#krate::registry::FieldSpec] = &[#(#specs),*];

            #[inline]
            fn quantize(&self, out: &mut [#i32_]) {
                #quantize
            }

            #[inline]
            fn dequantize(fields: &[#i32_]) -> Self {
                #dequantize
            }
        }
    }
}

/// The field specs, `quantize` body and `dequantize` body of a struct.
fn expand_struct(krate: &Path, fields: &[Field]) -> (Vec<TokenStream>, TokenStream, TokenStream) {
    let mut specs = Vec::new();
    let mut stores = Vec::new();
    let mut inits = Vec::new();
    // Declares the next wire field: its spec, how `quantize` fills it from `value`, and the
    // expression `dequantize` reads it with.
    let mut wire = |name: &str, encoding: Encoding, value: TokenStream| {
        let index = Literal::usize_unsuffixed(specs.len());
        let described = encoding.describe();
        specs.push(if encoding.is_angle() {
            quote!(#krate::registry::FieldSpec::angle(#name).quantized(#described))
        } else {
            quote!(#krate::registry::FieldSpec::int(#name).quantized(#described))
        });
        let quantized = quantize_value(krate, encoding, value);
        stores.push(quote!(out[#index] = #quantized;));
        dequantize_value(krate, encoding, quote!(fields[#index]))
    };
    for Field { member, shape, encoding } in fields {
        let value = quote!(self.#member);
        let init = match shape {
            Shape::Scalar(name) => wire(name, *encoding, value),
            Shape::Vec2([x_name, y_name]) => {
                let x = wire(x_name, *encoding, quote!(#value.x));
                let y = wire(y_name, *encoding, quote!(#value.y));
                quote!(#krate::glam::Vec2::new(#x, #y))
            }
        };
        inits.push(quote!(#member: #init));
    }
    let dequantize = quote!(Self { #(#inits),* });
    (specs, quote!(#(#stores)*), dequantize)
}

/// The `i32` that `value` (an expression of the field's type) is sent as.
fn quantize_value(krate: &Path, encoding: Encoding, value: TokenStream) -> TokenStream {
    let i32_ = primitive("i32");
    match encoding {
        Encoding::Int(IntTy::U32) => quote!(#value as #i32_),
        Encoding::Int(_) | Encoding::Bool => quote!(#i32_::from(#value)),
        Encoding::IntRange { ty: IntTy::U32, lo, hi } => {
            // `lo >= 0` was checked, so both bounds are valid `u32`s.
            let (lo, hi) = (lo.unsigned_abs(), hi.unsigned_abs());
            quote!(#value.clamp(#lo, #hi) as #i32_)
        }
        Encoding::IntRange { lo, hi, .. } => quote!(#i32_::from(#value).clamp(#lo, #hi)),
        Encoding::IntModulo { ty: IntTy::U32, modulus } => {
            let modulus = modulus.unsigned_abs();
            quote!((#value % #modulus) as #i32_)
        }
        Encoding::IntModulo { modulus, .. } => quote!(#i32_::from(#value).rem_euclid(#modulus)),
        Encoding::FloatRange { lo, hi } => quote!((#value.round() as #i32_).clamp(#lo, #hi)),
        Encoding::Position => quote!(#krate::quantize::position(#value)),
        Encoding::Angle => quote!(#i32_::from(#krate::quantize::angle(#value))),
        // `as` saturates at the `i32` range and maps NaN to 0.
        Encoding::Scale(scale) => quote!((#value * #scale).round() as #i32_),
    }
}

/// The field value that `q` (an `i32` expression) stands for; total over all `i32`s.
fn dequantize_value(krate: &Path, encoding: Encoding, q: TokenStream) -> TokenStream {
    let i32_ = primitive("i32");
    let f32_ = primitive("f32");
    match encoding {
        Encoding::Int(IntTy::I32) => q,
        Encoding::Int(IntTy::U32) => {
            let u32_ = primitive("u32");
            quote!(#q as #u32_)
        }
        Encoding::Int(ty) => {
            let ty = primitive(ty.name());
            quote!(#q.clamp(#ty::MIN as #i32_, #ty::MAX as #i32_) as #ty)
        }
        Encoding::Bool => quote!(#q != 0),
        Encoding::IntRange { ty: IntTy::I32, lo, hi } => quote!(#q.clamp(#lo, #hi)),
        Encoding::IntRange { ty, lo, hi } => {
            let ty = primitive(ty.name());
            quote!(#q.clamp(#lo, #hi) as #ty)
        }
        Encoding::IntModulo { ty: IntTy::I32, modulus } => quote!(#q.rem_euclid(#modulus)),
        Encoding::IntModulo { ty, modulus } => {
            let ty = primitive(ty.name());
            quote!(#q.rem_euclid(#modulus) as #ty)
        }
        Encoding::FloatRange { lo, hi } => quote!(#q.clamp(#lo, #hi) as #f32_),
        Encoding::Position => quote!(#krate::quantize::position_value(#q)),
        Encoding::Angle => {
            let u16_ = primitive("u16");
            quote!(#krate::quantize::angle_value((#q & 0xffff) as #u16_))
        }
        Encoding::Scale(scale) => quote!(#q as #f32_ / #scale),
    }
}
