//! Constant serde defaults, shared by every section (a leaf: the stages may use it, as they
//! use `ConfigError`). `#[serde(default = "default_u64::<300>")]` states the value where the
//! field is declared, instead of a one-line function per field.

/// The field's default is `N`.
pub(crate) const fn default_u64<const N: u64>() -> u64 {
    N
}

/// As [`default_u64`], for counts.
pub(crate) const fn default_u32<const N: u32>() -> u32 {
    N
}

/// As [`default_u64`], for sizes.
pub(crate) const fn default_usize<const N: usize>() -> usize {
    N
}
