//! Amounts in integer minor units, and the currencies that define them.

use std::fmt;

/// Why an amount could not be turned into minor units.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AmountError {
    /// Not a plain non-negative decimal (`"12.34"`, `12`, `"0.5"`).
    #[error("amount is not a non-negative decimal number")]
    NotADecimal,
    /// More fractional digits than the currency has: rounding money silently is
    /// never right, so the arrival is dead-lettered instead.
    #[error("amount has more decimals than {currency} allows ({exponent})")]
    TooManyDecimals {
        /// ISO code of the currency.
        currency: &'static str,
        /// Its ISO 4217 exponent.
        exponent: u32,
    },
    /// Larger than payhook can represent (u64 minor units).
    #[error("amount is too large")]
    Overflow,
}

/// An ISO 4217 currency that has a minor unit (so not XAU, XDR, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Currency {
    code: iso_currency::Currency,
    exponent: u32,
}

impl Currency {
    /// Parses a three-letter code, in any case (Stripe sends lower case), using
    /// the ISO 4217 table of the `iso_currency` crate.
    pub fn parse(code: &str) -> Option<Self> {
        if code.len() != 3 {
            return None;
        }
        let code = iso_currency::Currency::from_code(&code.to_ascii_uppercase())?;
        let exponent = u32::from(code.exponent()?);
        Some(Self { code, exponent })
    }

    /// The upper-case ISO code (`"EUR"`).
    pub fn code(self) -> &'static str {
        self.code.code()
    }

    /// Digits after the decimal point of one major unit (EUR 2, JPY 0, KWD 3).
    pub fn exponent(self) -> u32 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A non-negative amount in the currency's minor unit (cents for EUR, yen for JPY).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MinorUnits(u64);

impl MinorUnits {
    /// An amount the provider already gives in minor units.
    pub fn new(value: u64) -> Self {
        Self(value)
    }

    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Converts `value`, counted in units of 10^-`from_exponent` of the
    /// currency (a provider's own idea of the minor unit), into ISO minor
    /// units. Adyen sends CLP and ISK with 2 decimals where ISO has 0, so
    /// `rescale(1000, 2, CLP)` is 10; a remainder is refused, never dropped.
    pub fn rescale(value: u64, from_exponent: u32, currency: Currency) -> Result<Self, AmountError> {
        let to = currency.exponent();
        let factor = |diff: u32| 10u64.checked_pow(diff).ok_or(AmountError::Overflow);
        if from_exponent <= to {
            value.checked_mul(factor(to - from_exponent)?).map(Self).ok_or(AmountError::Overflow)
        } else {
            let divisor = factor(from_exponent - to)?;
            if value.is_multiple_of(divisor) {
                Ok(Self(value / divisor))
            } else {
                Err(AmountError::TooManyDecimals { currency: currency.code(), exponent: to })
            }
        }
    }

    /// Converts a major-unit decimal (`"12.34"` EUR → 1234) exactly: no floating
    /// point, no rounding. Trailing zeros beyond the exponent are fine
    /// (`"12.340"`); other extra digits are an error.
    pub fn from_major(text: &str, currency: Currency) -> Result<Self, AmountError> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || (text.contains('.') && fraction.is_empty()) {
            return Err(AmountError::NotADecimal);
        }
        let exponent = currency.exponent() as usize;
        let (kept, dropped) = fraction.split_at(fraction.len().min(exponent));
        if dropped.bytes().any(|b| b != b'0') {
            return Err(AmountError::TooManyDecimals { currency: currency.code(), exponent: currency.exponent() });
        }
        let padded = format!("{whole}{kept:0<exponent$}");
        padded.parse::<u64>().map(Self).map_err(|_| AmountError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn currencies_carry_their_iso_exponent() {
        assert_eq!(cur("eur").exponent(), 2);
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur("KWD").exponent(), 3);
        assert_eq!(cur("usd").code(), "USD");
    }

    #[test]
    fn unknown_and_unitless_currencies_are_refused() {
        for bad in ["", "EU", "EURO", "ZZZ", "XAU", "€€€"] {
            assert_eq!(Currency::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn major_units_convert_exactly() {
        assert_eq!(MinorUnits::from_major("12.34", cur("EUR")), Ok(MinorUnits(1234)));
        assert_eq!(MinorUnits::from_major("12.3", cur("EUR")), Ok(MinorUnits(1230)));
        assert_eq!(MinorUnits::from_major("12", cur("EUR")), Ok(MinorUnits(1200)));
        assert_eq!(MinorUnits::from_major("12.340", cur("EUR")), Ok(MinorUnits(1234)));
        assert_eq!(MinorUnits::from_major("1500", cur("JPY")), Ok(MinorUnits(1500)));
        assert_eq!(MinorUnits::from_major("1.005", cur("KWD")), Ok(MinorUnits(1005)));
        assert_eq!(MinorUnits::from_major("0.10", cur("EUR")), Ok(MinorUnits(10)));
    }

    #[test]
    fn extra_decimals_are_refused_not_rounded() {
        assert_eq!(
            MinorUnits::from_major("12.345", cur("EUR")),
            Err(AmountError::TooManyDecimals { currency: "EUR", exponent: 2 })
        );
        assert!(MinorUnits::from_major("1500.5", cur("JPY")).is_err());
    }

    #[test]
    fn rescaling_moves_between_a_providers_exponent_and_iso() {
        assert_eq!(MinorUnits::rescale(100_000, 2, cur("ISK")), Ok(MinorUnits(1000)));
        assert_eq!(MinorUnits::rescale(1000, 0, cur("IDR")), Ok(MinorUnits(100_000)));
        assert_eq!(MinorUnits::rescale(1234, 2, cur("EUR")), Ok(MinorUnits(1234)));
        assert_eq!(
            MinorUnits::rescale(100_050, 2, cur("ISK")),
            Err(AmountError::TooManyDecimals { currency: "ISK", exponent: 0 })
        );
        assert_eq!(MinorUnits::rescale(u64::MAX, 0, cur("IDR")), Err(AmountError::Overflow));
    }

    #[test]
    fn iso_exponents_that_providers_override_are_as_iso_defines_them() {
        let exponents: Vec<u32> = ["CLP", "CVE", "IDR", "ISK", "UGX", "HUF", "TWD"].map(|c| cur(c).exponent()).to_vec();
        assert_eq!(exponents, [0, 2, 2, 0, 0, 2, 2]);
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for bad in ["", ".", "1.", ".5", "-1", "+1", "1e3", "1,50", " 1", "0x10", "1.2.3"] {
            assert_eq!(MinorUnits::from_major(bad, cur("EUR")), Err(AmountError::NotADecimal), "{bad:?}");
        }
        assert_eq!(MinorUnits::from_major("99999999999999999999", cur("EUR")), Err(AmountError::Overflow));
    }
}
