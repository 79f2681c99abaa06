//! Wallets, signed transfers and their wire form.
//!
//! A wallet is an ed25519 key pair derived from its index (`wallet(i)`), so every node and
//! client agrees on the genesis wallets without exchanging keys. A transfer moves `amount`
//! from the signer to `to` and pays `fee` to the block's producer; `nonce` orders a sender's
//! transfers (the first is 0).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A wallet's address: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address(pub [u8; 32]);

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// A transaction id: SHA-256 of its signed wire form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxId(pub [u8; 32]);

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx:{:02x}{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// The wallet with index `i`: a key pair derived from `i` alone.
pub fn wallet(i: u32) -> SigningKey {
    let mut seed = [0u8; 32];
    rand_chacha::ChaCha8Rng::seed_from_u64(0x6c65_6467_6572_0000 ^ u64::from(i)).fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// The address of `key`.
pub fn address(key: &SigningKey) -> Address {
    Address(key.verifying_key().to_bytes())
}

/// What a transfer says, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The payer (and signer).
    pub from: Address,
    /// The payee.
    pub to: Address,
    /// Coins moved.
    pub amount: u64,
    /// Coins paid to the block producer.
    pub fee: u64,
    /// The payer's transfer number, from 0.
    pub nonce: u64,
}

/// A signed transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// What it says.
    pub transfer: Transfer,
    /// The payer's signature over the transfer's bytes.
    #[serde(with = "sig_bytes")]
    pub signature: [u8; 64],
}

mod sig_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        v.as_slice().serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let v = Vec::<u8>::deserialize(d)?;
        v.try_into().map_err(|_| serde::de::Error::custom("a signature is 64 bytes"))
    }
}

impl Transfer {
    /// The bytes that are signed.
    pub fn signing_bytes(&self) -> Vec<u8> {
        bincode::serialize(self).expect("a transfer encodes")
    }

    /// Signs the transfer with `key` (which should be `from`'s key).
    pub fn sign(self, key: &SigningKey) -> Tx {
        let signature = key.sign(&self.signing_bytes()).to_bytes();
        Tx { transfer: self, signature }
    }
}

impl Tx {
    /// Whether the signature is `from`'s over the transfer.
    ///
    /// Verification is a pure function of the transaction (its id covers transfer and
    /// signature), so answers are memoised per thread: under simulation every node of a world
    /// shares the one thread, and a transfer gossiped to n nodes is verified once instead of n
    /// times (the behaviour, and so the run, is the same either way).
    pub fn signature_valid(&self) -> bool {
        thread_local! {
            static VERIFIED: std::cell::RefCell<std::collections::BTreeMap<TxId, bool>> =
                const { std::cell::RefCell::new(std::collections::BTreeMap::new()) };
        }
        let id = self.id();
        if let Some(valid) = VERIFIED.with(|m| m.borrow().get(&id).copied()) {
            return valid;
        }
        let valid = VerifyingKey::from_bytes(&self.transfer.from.0).is_ok_and(|key| {
            key.verify_strict(&self.transfer.signing_bytes(), &Signature::from_bytes(&self.signature)).is_ok()
        });
        VERIFIED.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= 1 << 20 {
                m.clear();
            }
            m.insert(id, valid);
        });
        valid
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("a transaction encodes")
    }

    /// Reads a transaction from its wire form (`None` for malformed bytes).
    pub fn decode(bytes: &[u8]) -> Option<Tx> {
        use bincode::Options;
        bincode::options().with_fixint_encoding().with_limit(1024).reject_trailing_bytes().deserialize(bytes).ok()
    }

    /// Its id.
    pub fn id(&self) -> TxId {
        TxId(Sha256::digest(self.encode()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_transfer_verifies_and_tampering_breaks_it() {
        let (a, b) = (wallet(0), wallet(1));
        let tx = Transfer { from: address(&a), to: address(&b), amount: 5, fee: 1, nonce: 0 }.sign(&a);
        assert!(tx.signature_valid());
        assert_eq!(Tx::decode(&tx.encode()), Some(tx.clone()), "the wire form round-trips");
        let mut more = tx.clone();
        more.transfer.amount = 500;
        assert!(!more.signature_valid(), "a changed amount breaks the signature");
        let forged = Transfer { from: address(&a), to: address(&b), amount: 5, fee: 1, nonce: 0 }.sign(&b);
        assert!(!forged.signature_valid(), "signed by someone else");
        assert_ne!(tx.id(), more.id());
        assert_eq!(Tx::decode(b"\x01\x02garbage"), None);
        assert_eq!(address(&wallet(7)), address(&wallet(7)), "wallets are derived, the same everywhere");
        assert_ne!(address(&wallet(7)), address(&wallet(8)));
    }
}
