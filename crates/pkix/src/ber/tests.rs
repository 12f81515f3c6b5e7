//! The assertions of the two normalisers this one replaces (enrolkit-scep's
//! `normalize`/`check_set_sizes`, enrolkit-est's `normalize`/`check`), and
//! the rules added in the merge.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;

/// The SCEP limits: the old `normalize(input, limit)`.
fn scep(limit: usize) -> Limits {
    Limits::DEFAULT.with_max_len(limit)
}

/// The EST limits: the old `normalize(input, max_set)`, depth 32.
fn est(max_set: usize) -> Limits {
    Limits::DEFAULT.with_max_depth(32).with_max_elements(max_set)
}

fn too_large<T: std::fmt::Debug>(r: Result<T, BerError>) -> bool {
    matches!(r, Err(BerError::TooLarge { .. }))
}

#[test]
fn huge_sets_are_refused_also_inside_octet_strings() {
    let mut set = vec![0x31, 0x82];
    let n = MAX_ELEMENTS + 1;
    let len = n * 2;
    set.extend([(len >> 8) as u8, len as u8]);
    for _ in 0..n {
        set.extend([0x05, 0x00]);
    }
    assert!(too_large(check(&set, &Limits::DEFAULT)));
    assert!(too_large(normalize(&set, &Limits::DEFAULT)));
    let mut wrapped = vec![0x04, 0x82, (set.len() >> 8) as u8, set.len() as u8];
    wrapped.extend(&set);
    assert!(too_large(check(&wrapped, &Limits::DEFAULT)));
    assert!(too_large(normalize(&wrapped, &Limits::DEFAULT)));
    // The same inside a BIT STRING (after its unused-bits octet).
    let mut bits = vec![0x03, 0x82, ((set.len() + 1) >> 8) as u8, (set.len() + 1) as u8, 0];
    bits.extend(&set);
    assert!(too_large(check(&bits, &Limits::DEFAULT)));
    let small = [0x31, 0x04, 0x05, 0x00, 0x05, 0x00];
    check(&small, &Limits::DEFAULT).unwrap();
    // Strings that are not encodings are opaque.
    check(&[0x04, 0x03, 0x31, 0xff, 0x00], &Limits::DEFAULT).unwrap();
    assert_eq!(
        normalize(&[0x04, 0x03, 0x31, 0xff, 0x00], &Limits::DEFAULT).unwrap(),
        [0x04, 0x03, 0x31, 0xff, 0x00]
    );
}

#[test]
fn der_passes_through_unchanged() {
    let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa];
    assert_eq!(normalize(&der, &scep(100)).unwrap(), der);
    let der = [0x30, 0x06, 0x31, 0x04, 0x02, 0x01, 0x01, 0x05, 0x00];
    assert!(normalize(&der, &est(8)).is_err()); // length says 6, content is 7
    let der = [0x30, 0x07, 0x31, 0x05, 0x02, 0x01, 0x01, 0x05, 0x00];
    assert_eq!(normalize(&der, &est(8)).unwrap(), der);
    check(&der, &est(8)).unwrap();
}

#[test]
fn indefinite_and_chunked_octets_become_der() {
    // SEQUENCE (indef) { OCTET STRING (constructed, indef) { 04 01 aa, 04 01 bb } }
    let ber = [
        0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(
        normalize(&ber, &scep(100)).unwrap(),
        [0x30, 0x04, 0x04, 0x02, 0xaa, 0xbb]
    );
    assert_eq!(normalize(&ber, &est(8)).unwrap(), [0x30, 0x04, 0x04, 0x02, 0xaa, 0xbb]);
    check(&ber, &est(8)).unwrap();
    // Segments that are themselves constructed (X.690 §8.7.3.2).
    let nested = [0x24, 0x80, 0x24, 0x04, 0x04, 0x02, 0xaa, 0xbb, 0x04, 0x01, 0xcc, 0, 0];
    assert_eq!(normalize(&nested, &scep(100)).unwrap(), [0x04, 0x03, 0xaa, 0xbb, 0xcc]);
}

#[test]
fn constructed_bit_and_character_strings_become_primitive() {
    // BIT STRING { 03 02 00 aa, 03 02 04 b0 }: the last segment leaves 4 bits unused.
    let ber = [0x23, 0x08, 0x03, 0x02, 0x00, 0xaa, 0x03, 0x02, 0x04, 0xb0];
    assert_eq!(normalize(&ber, &scep(100)).unwrap(), [0x03, 0x03, 0x04, 0xaa, 0xb0]);
    // Unused bits in a segment other than the last.
    let ber = [0x23, 0x08, 0x03, 0x02, 0x04, 0xa0, 0x03, 0x02, 0x00, 0xb0];
    assert!(normalize(&ber, &scep(100)).is_err());
    // UTF8String (indefinite) { 0c 01 'a', 0c 01 'b' }
    let ber = [0x2c, 0x80, 0x0c, 0x01, b'a', 0x0c, 0x01, b'b', 0, 0];
    assert_eq!(normalize(&ber, &scep(100)).unwrap(), [0x0c, 0x02, b'a', b'b']);
    // A PrintableString segment in a UTF8String.
    let ber = [0x2c, 0x80, 0x13, 0x01, b'a', 0, 0];
    assert!(normalize(&ber, &scep(100)).is_err());
}

#[test]
fn encrypted_content_info_chunks_are_joined() {
    // SEQUENCE { OID 1.2, SEQUENCE {}, [0] (indef) { 04 01 aa 04 01 bb } }
    let ber = [
        0x30, 0x80, 0x06, 0x01, 0x2a, 0x30, 0x00, 0xa0, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0, 0, 0, 0,
    ];
    assert_eq!(
        normalize(&ber, &scep(100)).unwrap(),
        [0x30, 0x09, 0x06, 0x01, 0x2a, 0x30, 0x00, 0x80, 0x02, 0xaa, 0xbb]
    );
    // More segments than a SET may hold elements: segments are not counted.
    let n = MAX_ELEMENTS * 2;
    let mut ber = vec![0x30, 0x80, 0x06, 0x01, 0x2a, 0x30, 0x00, 0xa0, 0x80];
    for _ in 0..n {
        ber.extend([0x04, 0x01, 0x07]);
    }
    ber.extend([0, 0, 0, 0]);
    let der = normalize(&ber, &Limits::DEFAULT).unwrap();
    assert_eq!(der.get(9..13), Some(&[0x80, 0x82, (n >> 8) as u8, n as u8][..]));
    check(&ber, &Limits::DEFAULT).unwrap();
}

#[test]
fn non_minimal_length_is_fixed_and_long_lengths_work() {
    assert_eq!(
        normalize(&[0x04, 0x81, 0x01, 0x07], &scep(10)).unwrap(),
        [0x04, 0x01, 0x07]
    );
    assert_eq!(
        normalize(&[0x04, 0x81, 0x01, 0xaa], &est(8)).unwrap(),
        [0x04, 0x01, 0xaa]
    );
    let mut big = vec![0x04, 0x82, 0x01, 0x00];
    big.extend(std::iter::repeat_n(1u8, 256));
    assert_eq!(normalize(&big, &scep(1000)).unwrap(), big);
    let mut v = Vec::new();
    push_len(&mut v, 0x1234);
    assert_eq!(v, [0x82, 0x12, 0x34]);
}

#[test]
fn element_counts_are_bounded() {
    let mut set = vec![0x31, 0x0a];
    for _ in 0..5 {
        set.extend_from_slice(&[0x05, 0x00]);
    }
    assert!(normalize(&set, &est(5)).is_ok());
    assert!(too_large(normalize(&set, &est(4))));
    assert!(too_large(check(&set, &est(4))));
    // Context-specific constructed elements (an IMPLICIT SET OF) likewise.
    let mut implicit = set.clone();
    implicit[0] = 0xa0;
    assert!(normalize(&implicit, &est(5)).is_ok());
    assert!(too_large(normalize(&implicit, &est(4))));
    // A SEQUENCE is not counted.
    let mut seq = set.clone();
    seq[0] = 0x30;
    assert!(normalize(&seq, &est(4)).is_ok());
}

#[test]
fn hostile_inputs_are_errors() {
    for bad in [
        &[][..],
        &[0x30],
        &[0x30, 0x05, 0x02],
        &[0x30, 0x80, 0x02, 0x01, 0x01],
        &[0x04, 0x80, 0x00, 0x00],
        &[0x04, 0x85, 1, 1, 1, 1, 1],
        &[0x04, 0x84, 0xff, 0xff, 0xff, 0xff],
        &[0x1f, 0x81, 0x81, 0x81, 0x81, 0x81, 0x00],
        &[0x24, 0x03, 0x02, 0x01, 0x00],
        &[0x02, 0x01, 0x00, 0xff],
        &[0x30, 0x85, 1, 1, 1, 1, 1],
        &[0, 0],
        &[0x05, 0x00, 0x05],
        // End-of-contents inside a definite length, and a non-empty one.
        &[0x30, 0x02, 0x00, 0x00],
        &[0x30, 0x80, 0x00, 0x01, 0x00, 0, 0],
        // A child that runs past its parent.
        &[0x30, 0x02, 0x04, 0x02, 0xaa, 0xbb],
    ] {
        assert!(normalize(bad, &scep(1000)).is_err(), "{bad:02x?}");
        assert!(normalize(bad, &est(4)).is_err(), "{bad:02x?}");
        assert!(check(bad, &scep(1000)).is_err(), "{bad:02x?}");
    }
    let mut deep = Vec::new();
    for _ in 0..100 {
        deep.extend([0x30, 0x80]);
    }
    assert!(normalize(&deep, &scep(1000)).is_err());
    let mut deep = Vec::new();
    for _ in 0..40 {
        deep.extend_from_slice(&[0x30, 0x80]);
    }
    deep.extend(std::iter::repeat_n(0, 80));
    assert!(normalize(&deep, &est(4)).is_err());
    assert!(check(&deep, &est(4)).is_err());
    assert!(normalize(&deep, &scep(1000)).is_ok());
    assert!(too_large(normalize(&[0; 11], &scep(10))));
    assert!(too_large(check(&[0; 11], &scep(10))));
}

#[test]
fn output_is_a_fixed_point() {
    let inputs: [&[u8]; 3] = [
        &[
            0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 0xaa, 0, 0, 0x31, 0x81, 0x02, 0x05, 0x00, 0, 0,
        ],
        &[
            0x30, 0x80, 0x06, 0x01, 0x2a, 0x30, 0x00, 0xa0, 0x80, 0x04, 0x01, 0xaa, 0, 0, 0, 0,
        ],
        &[0xbf, 0x81, 0x00, 0x03, 0x02, 0x01, 0x00],
    ];
    for ber in inputs {
        let der = normalize(ber, &Limits::DEFAULT).unwrap();
        assert_eq!(normalize(&der, &Limits::DEFAULT).unwrap(), der, "{ber:02x?}");
        check(&der, &Limits::DEFAULT).unwrap();
    }
}
