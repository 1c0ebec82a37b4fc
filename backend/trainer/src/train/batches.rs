//! Length-bucketed batches: shuffle, cut into mega-batches of 50 batches, sort each by length,
//! cut into batches, shuffle the batch order. Padding stays small and every epoch differs.

use model::weights::SplitMix64;

/// Examples per mega-batch, in batches (HF's `group_by_length` uses 50).
const MEGA: usize = 50;

/// Fisher-Yates with a seeded generator.
pub fn shuffle<T>(xs: &mut [T], rng: &mut SplitMix64) {
    for i in (1..xs.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        xs.swap(i, j);
    }
}

/// The batches of one epoch (indices into `lengths`), fixed by `seed`.
pub fn epoch_batches(lengths: &[usize], batch_size: usize, seed: u64) -> Vec<Vec<usize>> {
    let bs = batch_size.max(1);
    let mut rng = SplitMix64(seed);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    shuffle(&mut order, &mut rng);
    let mut batches = Vec::with_capacity(lengths.len().div_ceil(bs));
    for mega in order.chunks_mut(bs * MEGA) {
        // Stable sort by length, longest first: ties keep the shuffled order.
        mega.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(mega.chunks(bs).map(<[usize]>::to_vec));
    }
    shuffle(&mut batches, &mut rng);
    batches
}

/// Number of batches per epoch.
pub fn batches_per_epoch(n: usize, batch_size: usize) -> usize {
    // Mega-batches are cut at multiples of the batch size, so only the last batch is short.
    n.div_ceil(batch_size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_once_and_batches_are_length_sorted() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 61 + 3).collect();
        let batches = epoch_batches(&lengths, 8, 7);
        assert_eq!(batches.len(), batches_per_epoch(1000, 8));
        let mut seen: Vec<usize> = batches.concat();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        // Within a mega-batch the lengths are sorted, so a batch spans few lengths.
        let spread: usize = batches.iter().map(|b| lengths[b[0]] - lengths[*b.last().unwrap()]).sum();
        assert!(spread / batches.len() <= 3, "mean spread {}", spread / batches.len());
        assert_eq!(batches, epoch_batches(&lengths, 8, 7));
        assert_ne!(batches, epoch_batches(&lengths, 8, 8));
    }
}
