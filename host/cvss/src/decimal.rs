//! Exact non-negative integers of any size, in decimal digits, for the CVSS v3 formulas.
//!
//! The v3 scope-changed impact raises a six-decimal number to the 15th power: the exact value
//! has 90 decimal places, far beyond `u128`. The v3 scorer therefore works in whole units of
//! 10^-94 held here. Decimal digits make the Roundup functions plain digit inspection.

/// A non-negative integer held as decimal digits, least significant first, with no leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Decimal {
    digits: Vec<u8>,
}

impl Decimal {
    /// The integer `value`.
    pub(crate) fn from_u128(mut value: u128) -> Decimal {
        let mut digits = Vec::new();
        while value > 0 {
            digits.push(digit_of(value % 10));
            value /= 10;
        }
        Decimal { digits }
    }

    /// `self × factor`.
    pub(crate) fn times(&self, factor: u64) -> Decimal {
        let mut digits = Vec::with_capacity(self.digits.len() + 20);
        let mut carry: u128 = 0;
        for digit in &self.digits {
            carry += u128::from(*digit) * u128::from(factor);
            digits.push(digit_of(carry % 10));
            carry /= 10;
        }
        while carry > 0 {
            digits.push(digit_of(carry % 10));
            carry /= 10;
        }
        Decimal { digits }.normalized()
    }

    /// `base` raised to `exponent`.
    pub(crate) fn power(base: u64, exponent: u32) -> Decimal {
        let mut result = Decimal::from_u128(1);
        for _ in 0..exponent {
            result = result.times(base);
        }
        result
    }

    /// `self × 10^places`.
    pub(crate) fn shifted(&self, places: usize) -> Decimal {
        if self.digits.is_empty() {
            return Decimal::default();
        }
        let mut digits = vec![0; places];
        digits.extend_from_slice(&self.digits);
        Decimal { digits }
    }

    /// `self + other`.
    pub(crate) fn plus(&self, other: &Decimal) -> Decimal {
        let len = self.digits.len().max(other.digits.len());
        let mut digits = Vec::with_capacity(len + 1);
        let mut carry = 0;
        for place in 0..len {
            let sum = self.digit(place) + other.digit(place) + carry;
            digits.push(sum % 10);
            carry = sum / 10;
        }
        if carry > 0 {
            digits.push(carry);
        }
        Decimal { digits }
    }

    /// `self − other`, or `None` when `other` is larger.
    pub(crate) fn minus(&self, other: &Decimal) -> Option<Decimal> {
        if other.digits.len() > self.digits.len() {
            return None;
        }
        let mut digits = Vec::with_capacity(self.digits.len());
        let mut borrow = 0;
        for place in 0..self.digits.len() {
            let subtrahend = other.digit(place) + borrow;
            let minuend = self.digit(place);
            if minuend >= subtrahend {
                digits.push(minuend - subtrahend);
                borrow = 0;
            } else {
                digits.push(minuend + 10 - subtrahend);
                borrow = 1;
            }
        }
        (borrow == 0).then(|| Decimal { digits }.normalized())
    }

    /// Whether the value is zero.
    pub(crate) fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// The digit worth `10^place` (0 beyond the most significant digit).
    pub(crate) fn digit(&self, place: usize) -> u8 {
        self.digits.get(place).copied().unwrap_or(0)
    }

    /// `⌊self / 10^place⌋`, saturating at `u64::MAX`.
    pub(crate) fn above(&self, place: usize) -> u64 {
        self.digits
            .iter()
            .skip(place)
            .rev()
            .fold(0_u64, |value, digit| {
                value.saturating_mul(10).saturating_add(u64::from(*digit))
            })
    }

    /// Whether any digit worth less than `10^place` is non-zero, i.e. `self` is not a multiple of `10^place`.
    pub(crate) fn any_below(&self, place: usize) -> bool {
        self.digits.iter().take(place).any(|digit| *digit != 0)
    }

    /// Drops leading zeros, so that equal values compare equal.
    fn normalized(mut self) -> Decimal {
        while self.digits.last() == Some(&0) {
            self.digits.pop();
        }
        self
    }
}

/// The digit `value`, known to be below ten.
fn digit_of(value: u128) -> u8 {
    // `value % 10` always fits; the fallback is never taken.
    u8::try_from(value).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decimal(digits: &str) -> Decimal {
        let mut value = Decimal::default();
        for digit in digits.bytes() {
            value = value
                .times(10)
                .plus(&Decimal::from_u128(u128::from(digit - b'0')));
        }
        value
    }

    fn text(value: &Decimal) -> String {
        if value.is_zero() {
            return "0".to_owned();
        }
        value
            .digits
            .iter()
            .rev()
            .map(|d| char::from(b'0' + d))
            .collect()
    }

    #[test]
    fn converts_and_multiplies_exactly() {
        assert_eq!(text(&Decimal::from_u128(0)), "0");
        assert_eq!(text(&Decimal::from_u128(u128::MAX)), u128::MAX.to_string());
        assert_eq!(text(&Decimal::from_u128(914_816).times(642)), "587311872");
        assert_eq!(text(&Decimal::from_u128(12).times(0)), "0");
    }

    #[test]
    fn powers_beyond_u128_are_exact() {
        assert_eq!(
            text(&Decimal::power(2, 200)),
            "1606938044258990275541962092341162602522202993782792835301376"
        );
        // The largest power the v3 formulas take: (ISS - 0.02) for C:H/I:H/A:H, in millionths.
        assert_eq!(
            text(&Decimal::power(894_816, 15)),
            "188801793370917322041459623750201814132507080288415161868572691962385817802296964967038976"
        );
        assert_eq!(text(&Decimal::power(7, 0)), "1");
        assert_eq!(text(&Decimal::power(0, 3)), "0");
    }

    #[test]
    fn adds_and_subtracts_with_carries() {
        let nines = decimal("99999999999999999999999999999999999999999");
        let one = Decimal::from_u128(1);
        let power_of_ten = nines.plus(&one);
        assert_eq!(
            text(&power_of_ten),
            "100000000000000000000000000000000000000000"
        );
        assert_eq!(power_of_ten.minus(&one).unwrap(), nines);
        assert_eq!(text(&nines.minus(&nines).unwrap()), "0");
        assert_eq!(one.minus(&nines), None);
        assert_eq!(decimal("100").minus(&decimal("101")), None);
        assert_eq!(text(&decimal("1000").minus(&decimal("1")).unwrap()), "999");
    }

    #[test]
    fn shifting_multiplies_by_powers_of_ten() {
        assert_eq!(text(&Decimal::from_u128(42).shifted(3)), "42000");
        assert_eq!(text(&Decimal::default().shifted(3)), "0");
    }

    #[test]
    fn digit_inspection_reads_places() {
        let value = decimal("98765000001");
        assert_eq!(value.digit(0), 1);
        assert_eq!(value.digit(6), 5);
        assert_eq!(value.digit(40), 0);
        assert_eq!(value.above(6), 98765);
        assert_eq!(value.above(11), 0);
        assert!(value.any_below(1));
        assert!(!decimal("98765000000").any_below(6));
        assert!(decimal("98765000000").any_below(7));
        assert_eq!(Decimal::from_u128(1).shifted(30).above(0), u64::MAX);
    }
}
