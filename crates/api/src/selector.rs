//! Label and field selectors: parsing (upstream syntax and errors) and matching.
