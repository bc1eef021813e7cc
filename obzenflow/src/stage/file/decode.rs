//! Decodes a CSV row into a `serde::Deserialize` type by its header's column
//! names: each field is text, parsed as the type asks (a number, a bool, a
//! string, a unit enum variant), and a field that is a missing-value marker
//! (`NA`, empty) decodes as `None` for an `Option`.
//!
//! The `csv` crate decodes rows too, but only an empty field is `None` to
//! it; rewriting `NA` to empty first would also empty a `String` column
//! whose value is really `NA`.

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use std::fmt;

/// Why a row did not decode.
#[derive(Debug)]
pub(super) enum DecodeError {
    /// The header lacks a column the type needs: every row will fail.
    MissingColumn(String),
    /// This row is bad.
    Row(String),
    /// A probe of the header (see [`Row::probe`]) found every column.
    Probed,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::MissingColumn(column) => write!(f, "no column `{column}`"),
            DecodeError::Row(message) => f.write_str(message),
            DecodeError::Probed => f.write_str("the header has every column"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        DecodeError::Row(message.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        DecodeError::MissingColumn(field.to_owned())
    }
}

impl DecodeError {
    /// The same error, said of `column`.
    fn in_column(self, column: &str) -> Self {
        match self {
            DecodeError::Row(message) => DecodeError::Row(format!("column `{column}`: {message}")),
            missing => missing,
        }
    }
}

/// What decodes one row.
pub(super) struct Row<'a> {
    pub(super) header: &'a [String],
    pub(super) fields: &'a csv::StringRecord,
    pub(super) missing: &'a [Vec<u8>],
    /// Whether the header was found to hold every field the type names
    /// (checked at the first row).
    pub(super) checked: &'a mut bool,
    /// Only check the header's columns against the type's fields, and stop
    /// with [`DecodeError::Probed`]: run once when the file opens, so that a
    /// missing column fails the stage even when no row follows.
    pub(super) probe: bool,
}

impl<'de> Deserializer<'de> for Row<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.probe {
            return Err(DecodeError::Probed);
        }
        visitor.visit_map(Columns { row: self, next: 0 })
    }

    /// A struct's fields must all be columns of the header, `Option` ones
    /// too: a misspelt column that quietly decoded as `None` in every row
    /// would be worse than an error.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        if !*self.checked {
            if let Some(absent) = fields
                .iter()
                .find(|field| !self.header.iter().any(|column| column == *field))
            {
                return Err(DecodeError::MissingColumn((*absent).to_owned()));
            }
            *self.checked = true;
        }
        self.deserialize_map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.probe {
            return Err(DecodeError::Probed);
        }
        visitor.visit_seq(Fields { row: self, next: 0 })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct enum identifier ignored_any
    }
}

/// A row's columns, as a map from the header's names to the fields.
struct Columns<'a> {
    row: Row<'a>,
    next: usize,
}

impl<'de> MapAccess<'de> for Columns<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some(name) = self.row.header.get(self.next) else {
            return Ok(None);
        };
        if self.next >= self.row.fields.len() {
            return Ok(None);
        }
        seed.deserialize(name.as_str().into_deserializer())
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let index = self.next;
        self.next += 1;
        let column = self.row.header.get(index).map_or("", String::as_str);
        let text = self.row.fields.get(index).unwrap_or_default();
        seed.deserialize(Field {
            text,
            missing: self.row.missing,
        })
        .map_err(|error| error.in_column(column))
    }
}

/// A row's fields in order, for a tuple type.
struct Fields<'a> {
    row: Row<'a>,
    next: usize,
}

impl<'de> SeqAccess<'de> for Fields<'_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        let index = self.next;
        let Some(text) = self.row.fields.get(index) else {
            return Ok(None);
        };
        self.next += 1;
        let column = self.row.header.get(index).map_or("", String::as_str);
        seed.deserialize(Field {
            text,
            missing: self.row.missing,
        })
        .map(Some)
        .map_err(|error| error.in_column(column))
    }
}

/// One field's text (the row was checked to be UTF-8 as a whole).
struct Field<'a> {
    text: &'a str,
    missing: &'a [Vec<u8>],
}

impl Field<'_> {
    fn is_missing(&self) -> bool {
        self.missing
            .iter()
            .any(|marker| marker.as_slice() == self.text.as_bytes())
    }

    /// The text parsed as a `what`, with a message that says which value
    /// failed and, for a missing one, how to accept it.
    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, DecodeError>
    where
        T::Err: fmt::Display,
    {
        let text = self.text;
        // Trimmed only when it needs to be: most fields do not.
        let padded = text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace);
        let trimmed = if padded { text.trim() } else { text };
        trimmed.parse::<T>().map_err(|error| {
            if self.is_missing() {
                DecodeError::Row(format!(
                    "the value is missing (`{text}`); declare the field an `Option` to accept that"
                ))
            } else {
                DecodeError::Row(format!("`{text}` is not {what}: {error}"))
            }
        })
    }
}

macro_rules! parse_as {
    ($($method:ident $visit:ident $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            visitor.$visit(self.parse::<$ty>($what)?)
        }
    )*};
}

impl<'de> Deserializer<'de> for Field<'_> {
    type Error = DecodeError;

    /// For a type that takes anything (`serde_json::Value`, an untagged
    /// enum): missing is none, then a bool, an integer, a number, or text.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.is_missing() {
            return visitor.visit_none();
        }
        let text = self.text;
        if let Ok(value) = text.parse::<bool>() {
            visitor.visit_bool(value)
        } else if let Ok(value) = text.parse::<u64>() {
            visitor.visit_u64(value)
        } else if let Ok(value) = text.parse::<i64>() {
            visitor.visit_i64(value)
        } else if let Ok(value) = text.parse::<f64>() {
            visitor.visit_f64(value)
        } else {
            visitor.visit_str(text)
        }
    }

    parse_as! {
        deserialize_i8 visit_i8 i8, "an integer";
        deserialize_i16 visit_i16 i16, "an integer";
        deserialize_i32 visit_i32 i32, "an integer";
        deserialize_i64 visit_i64 i64, "an integer";
        deserialize_i128 visit_i128 i128, "an integer";
        deserialize_u8 visit_u8 u8, "a whole number";
        deserialize_u16 visit_u16 u16, "a whole number";
        deserialize_u32 visit_u32 u32, "a whole number";
        deserialize_u64 visit_u64 u64, "a whole number";
        deserialize_u128 visit_u128 u128, "a whole number";
        deserialize_f32 visit_f32 f32, "a number";
        deserialize_f64 visit_f64 f64, "a number";
        deserialize_char visit_char char, "one character";
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let text = self.text;
        match text.trim() {
            t if t.eq_ignore_ascii_case("true") => visitor.visit_bool(true),
            t if t.eq_ignore_ascii_case("false") => visitor.visit_bool(false),
            _ => Err(DecodeError::Row(format!(
                "`{text}` is not `true` or `false`"
            ))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_str(self.text)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_bytes(self.text.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.is_missing() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    /// A unit variant, by its name.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let text: de::value::StrDeserializer<'_, DecodeError> =
            self.text.trim().into_deserializer();
        visitor.visit_enum(text)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DecodeError> {
        Err(DecodeError::Row(
            "a CSV field cannot hold a list; decode it as a `String` and split it".to_owned(),
        ))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DecodeError> {
        Err(DecodeError::Row(
            "a CSV field cannot hold a map or a struct (`#[serde(flatten)]` one instead)"
                .to_owned(),
        ))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_map(visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Flight {
        carrier: String,
        dep_delay: Option<f64>,
        flight: u32,
        tailnum: String,
        cancelled: bool,
        kind: Kind,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Kind {
        Domestic,
        International,
    }

    fn decode<T: for<'de> Deserialize<'de>>(header: &str, row: &str) -> Result<T, DecodeError> {
        let header: Vec<String> = header.split(',').map(str::to_owned).collect();
        let fields = csv::StringRecord::from(row.split(',').collect::<Vec<_>>());
        let missing = [b"NA".to_vec(), Vec::new()];
        T::deserialize(Row {
            header: &header,
            fields: &fields,
            missing: &missing,
            checked: &mut false,
            probe: false,
        })
    }

    const HEADER: &str = "year,carrier,dep_delay,flight,tailnum,cancelled,kind";

    #[test]
    fn fields_decode_by_header_name_and_markers_are_none_only_for_options() {
        let flight: Flight = decode(HEADER, "2013,UA,NA,1545,NA,false,Domestic").unwrap();
        assert_eq!(
            flight,
            Flight {
                carrier: "UA".into(),
                dep_delay: None,
                flight: 1545,
                tailnum: "NA".into(),
                cancelled: false,
                kind: Kind::Domestic,
            }
        );
        let flight: Flight = decode(HEADER, "2013,AA,-3.5,1,N1,TRUE,International").unwrap();
        assert_eq!(flight.dep_delay, Some(-3.5));
        assert!(flight.cancelled);
        assert_eq!(flight.kind, Kind::International);
        let tuple: (u32, String) = decode("a,b", "7,x").unwrap();
        assert_eq!(tuple, (7, "x".to_owned()));
        // Numbers padded on either side are trimmed; text is kept as it is.
        for padded in [" 7, x", "7 , x", " 7 , x"] {
            let tuple: (u32, String) = decode("a,b", padded).unwrap();
            assert_eq!(tuple, (7, " x".to_owned()), "{padded:?}");
        }
        let any: serde_json::Value = decode("a,b,c,d", "1,-2,x,NA").unwrap();
        assert_eq!(
            any,
            serde_json::json!({"a": 1, "b": -2, "c": "x", "d": null})
        );
    }

    #[test]
    fn a_bad_field_is_named_by_column_and_a_missing_column_is_told_apart() {
        let error = decode::<Flight>(HEADER, "2013,UA,soon,1545,N1,false,Domestic").unwrap_err();
        assert_eq!(
            error.to_string(),
            "column `dep_delay`: `soon` is not a number: invalid float literal"
        );
        let error = decode::<Flight>(HEADER, "2013,UA,1,NA,N1,false,Domestic").unwrap_err();
        assert!(
            error.to_string().starts_with(
                "column `flight`: the value is missing (`NA`); declare the field an `Option`"
            ),
            "{error}"
        );
        let error = decode::<Flight>(HEADER, "2013,UA,1,1,N1,maybe,Domestic").unwrap_err();
        assert_eq!(
            error.to_string(),
            "column `cancelled`: `maybe` is not `true` or `false`"
        );
        let error = decode::<Flight>(HEADER, "2013,UA,1,1,N1,true,Regional").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("column `kind`: unknown variant `Regional`")
        );
        let error = decode::<Flight>("carrier,dep_delay", "UA,1").unwrap_err();
        assert!(
            matches!(&error, DecodeError::MissingColumn(c) if c == "flight"),
            "{error}"
        );
        // An `Option` field's column must be there too.
        let header = "carrier,flight,tailnum,cancelled,kind";
        let error = decode::<Flight>(header, "UA,1,N1,true,Domestic").unwrap_err();
        assert!(
            matches!(&error, DecodeError::MissingColumn(c) if c == "dep_delay"),
            "{error}"
        );
        // A probe checks the header without a row.
        let probe = |header: &str| {
            let header: Vec<String> = header.split(',').map(str::to_owned).collect();
            Flight::deserialize(Row {
                header: &header,
                fields: &csv::StringRecord::new(),
                missing: &[],
                checked: &mut false,
                probe: true,
            })
            .unwrap_err()
        };
        assert!(matches!(probe(HEADER), DecodeError::Probed));
        assert!(matches!(probe("carrier"), DecodeError::MissingColumn(c) if c == "dep_delay"));
    }
}
