//! Loose request fields, checked one by one so that every invalid field is reported at once.

use bazaar_runtime::FieldError;
use serde_json::Value;

/// The string at `pointer`, or a field error when it is missing, `null` or not a string.
pub fn string(value: Option<Value>, pointer: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(pointer, "is required"));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.push(FieldError::new(pointer, "must be a string"));
            None
        }
    }
}
