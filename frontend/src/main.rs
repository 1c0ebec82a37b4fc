//! Placeholder until the browser app lands (see the browser-app issue).
fn main() {}
