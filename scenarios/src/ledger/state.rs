//! Balances and nonces, and the rule that applies a transfer to them.

use super::tx::{Address, Tx};
use std::collections::BTreeMap;

/// Why a transfer cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The signature is not the payer's.
    #[error("bad signature")]
    BadSignature,
    /// The nonce is not the payer's next one.
    #[error("bad nonce: expected {expected}, got {got}")]
    BadNonce {
        /// The payer's next nonce.
        expected: u64,
        /// The transfer's.
        got: u64,
    },
    /// The payer cannot pay amount plus fee.
    #[error("insufficient funds: has {has}, needs {needs}")]
    InsufficientFunds {
        /// Balance.
        has: u64,
        /// Amount plus fee.
        needs: u128,
    },
    /// Another pending transfer of the payer has this nonce (mempools do not replace).
    #[error("nonce {nonce} is already taken by a pending transfer")]
    NoncePending {
        /// The nonce.
        nonce: u64,
    },
    /// The payee's balance would overflow.
    #[error("the payee's balance would overflow")]
    Overflow,
}

/// Every wallet's balance and next nonce. Wallets that never held coins are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    balances: BTreeMap<Address, u64>,
    nonces: BTreeMap<Address, u64>,
}

impl State {
    /// The genesis state: each of `wallets` holds `balance`.
    pub fn genesis(wallets: &[Address], balance: u64) -> State {
        State { balances: wallets.iter().map(|a| (*a, balance)).collect(), nonces: BTreeMap::new() }
    }

    /// A wallet's balance.
    pub fn balance(&self, a: &Address) -> u64 {
        self.balances.get(a).copied().unwrap_or(0)
    }

    /// A wallet's next nonce.
    pub fn nonce(&self, a: &Address) -> u64 {
        self.nonces.get(a).copied().unwrap_or(0)
    }

    /// The sum of all balances (constant: transfers move coins, fees go to producers).
    pub fn supply(&self) -> u128 {
        self.balances.values().map(|&b| u128::from(b)).sum()
    }

    /// Checks `tx`'s nonce and funds against this state without applying it. Signatures are
    /// not checked here: a validator verifies each transfer's signature once, when it enters
    /// its mempool or a proposal it votes on ([`Tx::signature_valid`]), and replaying blocks
    /// does not verify them again.
    pub fn check(&self, tx: &Tx, fee_overflow_bug: bool) -> Result<(), TxError> {
        let t = &tx.transfer;
        let expected = self.nonce(&t.from);
        if t.nonce != expected {
            return Err(TxError::BadNonce { expected, got: t.nonce });
        }
        let has = self.balance(&t.from);
        let needs = if fee_overflow_bug {
            // Planted bug: the total is computed in u64 and wraps, so a huge amount with a
            // fee that overflows it passes the funds check.
            u128::from(t.amount.wrapping_add(t.fee))
        } else {
            u128::from(t.amount) + u128::from(t.fee)
        };
        if u128::from(has) < needs {
            return Err(TxError::InsufficientFunds { has, needs });
        }
        if !fee_overflow_bug && t.to != t.from && self.balance(&t.to).checked_add(t.amount).is_none() {
            return Err(TxError::Overflow);
        }
        Ok(())
    }

    /// Applies `tx`, paying its fee to `producer`. The state is unchanged on error.
    pub fn apply(&mut self, tx: &Tx, producer: &Address, fee_overflow_bug: bool) -> Result<(), TxError> {
        self.check(tx, fee_overflow_bug)?;
        let t = &tx.transfer;
        let debit = t.amount.wrapping_add(t.fee);
        let from = self.balances.entry(t.from).or_insert(0);
        *from = from.wrapping_sub(debit);
        let to = self.balances.entry(t.to).or_insert(0);
        *to = to.wrapping_add(t.amount);
        let p = self.balances.entry(*producer).or_insert(0);
        *p = p.wrapping_add(t.fee);
        self.nonces.insert(t.from, t.nonce + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tx::{address, wallet, Transfer};
    use super::*;
    use proptest::prelude::*;

    fn wallets(n: u32) -> Vec<Address> {
        (0..n).map(|i| address(&wallet(i))).collect()
    }

    #[test]
    fn a_transfer_moves_coins_pays_the_fee_and_advances_the_nonce() {
        let w = wallets(3);
        let mut s = State::genesis(&w, 100);
        let tx = Transfer { from: w[0], to: w[1], amount: 30, fee: 2, nonce: 0 }.sign(&wallet(0));
        s.apply(&tx, &w[2], false).unwrap();
        assert_eq!((s.balance(&w[0]), s.balance(&w[1]), s.balance(&w[2])), (68, 130, 102));
        assert_eq!(s.nonce(&w[0]), 1);
        assert_eq!(s.apply(&tx, &w[2], false), Err(TxError::BadNonce { expected: 1, got: 0 }), "no replay");
        let broke = Transfer { from: w[0], to: w[1], amount: 68, fee: 1, nonce: 1 }.sign(&wallet(0));
        assert_eq!(s.apply(&broke, &w[2], false), Err(TxError::InsufficientFunds { has: 68, needs: 69 }));
        assert_eq!(s.supply(), 300);
    }

    #[test]
    fn fee_overflow_mints_coins_only_with_the_planted_bug() {
        let w = wallets(3);
        // Paid to an empty wallet: u64::MAX + 2 wraps to 1, which the payer can afford.
        let evil = Transfer { from: w[0], to: w[2], amount: u64::MAX, fee: 2, nonce: 0 }.sign(&wallet(0));
        let mut ok = State::genesis(&w[..2], 100);
        assert!(matches!(ok.apply(&evil, &w[1], false), Err(TxError::InsufficientFunds { .. })));
        assert_eq!(ok.supply(), 200);
        let mut bad = State::genesis(&w[..2], 100);
        bad.apply(&evil, &w[1], true).unwrap();
        assert_eq!(bad.balance(&w[2]), u64::MAX);
        assert!(bad.supply() > 200, "coins were minted: {}", bad.supply());
    }

    proptest! {
        /// Whatever transfers are attempted, the supply never changes without the bug, and
        /// a rejected transfer changes nothing.
        #[test]
        fn supply_is_conserved(ops in prop::collection::vec((0u32..4, 0u32..4, 0u64..150, 0u64..5, 0u64..3), 0..60)) {
            let w = wallets(4);
            let mut s = State::genesis(&w, 100);
            for (from, to, amount, fee, skew) in ops {
                let nonce = s.nonce(&w[from as usize]) + skew % 2 * skew;
                let tx = Transfer { from: w[from as usize], to: w[to as usize], amount, fee, nonce }.sign(&wallet(from));
                let before = s.clone();
                if s.apply(&tx, &w[(from as usize + 1) % 4], false).is_err() {
                    prop_assert_eq!(&s, &before);
                }
                prop_assert_eq!(s.supply(), 400);
            }
        }
    }
}
