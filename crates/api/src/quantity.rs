//! Resource quantities (`100m`, `1.5Gi`): parsing, canonical form, arithmetic.
