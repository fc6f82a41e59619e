//! `x-fapi-interaction-id` (FAPI 1.0 Part 1 §6.2.1 11-13): echoed when the client sent a
//! UUID, otherwise a fresh UUID v4; present on every response.

pub const HEADER: &str = "x-fapi-interaction-id";

pub fn resolve(incoming: Option<&str>) -> String {
    match incoming {
        // Only the canonical hyphenated form is echoed, so nothing else ever reaches logs or
        // headers from this field.
        Some(id) if id.len() == 36 && uuid::Uuid::try_parse(id).is_ok() => id.to_owned(),
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_valid_uuids_only() {
        let id = "0b6f5c7e-3d52-4b1e-9a43-1c2d3e4f5a6b";
        assert_eq!(resolve(Some(id)), id);
        for bad in [
            "",
            "not-a-uuid",
            "0b6f5c7e3d524b1e9a431c2d3e4f5a6b",
            "{0b6f5c7e-3d52-4b1e-9a43-1c2d3e4f5a6b}",
        ] {
            let generated = resolve(Some(bad));
            assert_ne!(generated, bad);
            assert!(uuid::Uuid::try_parse(&generated).is_ok());
        }
        assert_ne!(resolve(None), resolve(None));
    }
}
