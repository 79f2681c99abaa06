//! Any bytes given to the bundle decoder give a bundle or an error, never a panic; a decoded
//! bundle encodes and decodes again to the same summary.
#![no_main]

use gauntlet::bundle::Bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = Bundle::decode(data) {
        let again = Bundle::decode(&bundle.encode().expect("a decoded bundle encodes")).expect("and decodes");
        assert_eq!(again.summary, bundle.summary);
    }
});
