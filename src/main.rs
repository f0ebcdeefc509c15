//! diem: placeholder until the service lands.
fn main() {}
