//! Past the checksums: any body, sealed with a valid header, gives a bundle or an error from
//! the section decoders (zstd, bincode, size limits), never a panic.
#![no_main]

use gauntlet::bundle::{seal, Bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = Bundle::decode(&seal(body));
});
