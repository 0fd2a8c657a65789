//! The built-in map and reduce functions. A record is a key and a value, both bytes; the
//! text output format writes `key<TAB>value` lines.

/// A map function: one input line in, records out.
pub type MapFn = fn(&[u8], &mut dyn FnMut(&[u8], &[u8]));
/// A reduce (or combine) function: one key and all its values in, records out.
pub type ReduceFn = fn(&[u8], &mut dyn Iterator<Item = &[u8]>, &mut dyn FnMut(&[u8], &[u8]));

/// wordcount's map: each whitespace-separated word with the count 1.
pub fn wordcount_map(line: &[u8], emit: &mut dyn FnMut(&[u8], &[u8])) {
    for word in line.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()) {
        emit(word, b"1");
    }
}

/// Sums decimal counts (wordcount's combiner and reducer). A value that is not a number
/// counts as 0 rather than failing the job (Hadoop's LongSumReducer would throw; streaming
/// users feed it text).
pub fn sum_reduce(key: &[u8], values: &mut dyn Iterator<Item = &[u8]>, emit: &mut dyn FnMut(&[u8], &[u8])) {
    let total: u64 =
        values.map(|v| std::str::from_utf8(v).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0)).sum();
    emit(key, total.to_string().as_bytes());
}

/// The line itself as the key, no value (identity map over text).
pub fn identity_map(line: &[u8], emit: &mut dyn FnMut(&[u8], &[u8])) {
    emit(line, b"");
}

/// Every value of the key, in order.
pub fn identity_reduce(key: &[u8], values: &mut dyn Iterator<Item = &[u8]>, emit: &mut dyn FnMut(&[u8], &[u8])) {
    for v in values {
        emit(key, v);
    }
}

/// A map function by name; `Err` lists the names there are.
pub fn map_fn(name: &str) -> Result<MapFn, String> {
    match name {
        "wordcount" => Ok(wordcount_map),
        "identity" => Ok(identity_map),
        other => Err(format!("unknown mapper '{other}' (built-in mappers: wordcount, identity)")),
    }
}

/// A reduce function by name.
pub fn reduce_fn(name: &str) -> Result<ReduceFn, String> {
    match name {
        "sum" | "wordcount" => Ok(sum_reduce),
        "identity" => Ok(identity_reduce),
        other => Err(format!("unknown reducer '{other}' (built-in reducers: sum, identity)")),
    }
}

/// Hadoop's HashPartitioner, with a stable hash (FNV-1a) so every map agrees.
pub fn partition(key: &[u8], partitions: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in key {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordcount_functions() {
        let mut out = Vec::new();
        wordcount_map(b"  the cat\tthe\r\n", &mut |k, v| out.push((k.to_vec(), v.to_vec())));
        assert_eq!(
            out,
            [(b"the".to_vec(), b"1".to_vec()), (b"cat".to_vec(), b"1".to_vec()), (b"the".to_vec(), b"1".to_vec())]
        );
        let mut sums = Vec::new();
        let vals: Vec<&[u8]> = vec![b"1", b"2", b"39"];
        sum_reduce(b"the", &mut vals.into_iter(), &mut |k, v| sums.push((k.to_vec(), v.to_vec())));
        assert_eq!(sums, [(b"the".to_vec(), b"42".to_vec())]);
        assert!(map_fn("nope").unwrap_err().contains("wordcount"));
        assert_eq!(partition(b"x", 1), 0);
        assert!((0..1000).all(|i| partition(format!("k{i}").as_bytes(), 7) < 7));
    }
}
