//! The wire protocol v1, what a client and the hub exchange over `/ws`: `protocol` (the server's
//! frames, channel names, seqs), `client_op` (the client's frames, decoded), `batch` (a `batch` frame from frames already
//! serialised), `merge_patch` (the `delta` frames' RFC 7386 patches),
//! `every` (conflated delivery's intervals and `skipped` count) and `frame_size` (a client frame judged by its size before it is copied into wasm memory), and the
//! JSON beyond the frames: `bodies` (history pages, what shards exchange) and `error_body` (the API's
//! error body), and `values` (the built-in channels' values).

pub mod batch;
pub mod bodies;
pub mod client_op;
pub mod error_body;
pub mod every;
pub mod frame_size;
pub mod merge_patch;
pub mod presence;
pub mod protocol;
pub mod values;
