//! A check the safetensors parser does not make: that the header names each tensor
//! once (it keeps the last of two entries with one name, silently).

use serde::Deserializer as _;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// The first key of the header's top-level JSON object that appears twice; `None` if
/// every key is distinct or the header is not a JSON object (the parser reports that).
pub(crate) fn duplicate_key(header: &[u8]) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(header);
    de.deserialize_map(FirstDuplicate).ok().flatten()
}

/// Visits the top-level map, stopping at the first repeated key.
struct FirstDuplicate;

impl<'de> Visitor<'de> for FirstDuplicate {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            if !seen.insert(key.clone()) {
                return Ok(Some(key));
            }
        }
        Ok(None)
    }
}
