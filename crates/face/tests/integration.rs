//! Face engine on the real models and real photos (fetched by `python3 setup/fetch.py`).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

mod common;
mod decode;
mod pipeline;
mod quality;
