//! ALTO error responses, RFC 7285 §8.5: the four error codes of Table 1 with their optional
//! `syntax-error`, `field` and `value` members, encoded as `application/alto-error+json`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The error codes of RFC 7285 §8.5.2, Table 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Parsing error in request (including identifiers).
    #[serde(rename = "E_SYNTAX")]
    Syntax,
    /// A required JSON field is missing.
    #[serde(rename = "E_MISSING_FIELD")]
    MissingField,
    /// The type of the value of a JSON field is invalid.
    #[serde(rename = "E_INVALID_FIELD_TYPE")]
    InvalidFieldType,
    /// The value of a JSON field is invalid.
    #[serde(rename = "E_INVALID_FIELD_VALUE")]
    InvalidFieldValue,
}

impl ErrorCode {
    /// Every code, in the order of Table 1.
    pub const ALL: [ErrorCode; 4] = [
        ErrorCode::Syntax,
        ErrorCode::MissingField,
        ErrorCode::InvalidFieldType,
        ErrorCode::InvalidFieldValue,
    ];

    /// The code as it appears on the wire, e.g. `E_SYNTAX`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Syntax => "E_SYNTAX",
            ErrorCode::MissingField => "E_MISSING_FIELD",
            ErrorCode::InvalidFieldType => "E_INVALID_FIELD_TYPE",
            ErrorCode::InvalidFieldValue => "E_INVALID_FIELD_VALUE",
        }
    }
}

/// The `meta` of an ALTO error response (RFC 7285 §8.5.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMeta {
    /// The error code.
    pub code: ErrorCode,
    /// Human-readable position and cause of a syntax error (E_SYNTAX only).
    #[serde(
        rename = "syntax-error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub syntax_error: Option<String>,
    /// Full path of the offending field, e.g. `cost-type/cost-metric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The offending value as a string (only with `field`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// An ALTO error: what a server answers for a request it cannot serve, and what a client
/// decodes from an `application/alto-error+json` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AltoError {
    /// The error's meta information; RFC 7285 errors carry no data component.
    pub meta: ErrorMeta,
}

impl AltoError {
    fn new(code: ErrorCode) -> Self {
        AltoError {
            meta: ErrorMeta {
                code,
                syntax_error: None,
                field: None,
                value: None,
            },
        }
    }

    /// `E_SYNTAX` with a free-form description, ideally with line and column.
    pub fn syntax(message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::Syntax);
        e.meta.syntax_error = Some(message.into());
        e
    }

    /// `E_MISSING_FIELD` naming the full path of the missing field.
    pub fn missing_field(field: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::MissingField);
        e.meta.field = Some(field.into());
        e
    }

    /// `E_INVALID_FIELD_TYPE` naming the field whose value has the wrong JSON type.
    pub fn invalid_type(field: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::InvalidFieldType);
        e.meta.field = Some(field.into());
        e
    }

    /// `E_INVALID_FIELD_VALUE` naming the field and the offending value (as a string).
    pub fn invalid_value(field: impl Into<String>, value: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::InvalidFieldValue);
        e.meta.field = Some(field.into());
        e.meta.value = Some(value.into());
        e
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.meta.code
    }

    /// The HTTP status that goes with the error: RFC 7285 §8.5 errors are all client errors.
    pub fn http_status(&self) -> u16 {
        400
    }

    /// The `application/alto-error+json` body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("error meta always serializes")
    }
}

impl fmt::Display for AltoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.meta.code.as_str())?;
        if let Some(s) = &self.meta.syntax_error {
            write!(f, ": {s}")?;
        }
        if let Some(field) = &self.meta.field {
            write!(f, " (field `{field}`")?;
            if let Some(v) = &self.meta.value {
                write!(f, ", value `{v}`")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for AltoError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_value_encodes_field_and_value_as_in_section_8_5_2() {
        let e = AltoError::invalid_value("cost-type/cost-mode", "foo");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"meta": {"code": "E_INVALID_FIELD_VALUE",
                "field": "cost-type/cost-mode", "value": "foo"}})
        );
    }

    #[test]
    fn every_code_round_trips_through_json() {
        for code in ErrorCode::ALL {
            let s = serde_json::to_string(&code).unwrap();
            assert_eq!(s, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&s).unwrap(), code);
        }
    }
}
