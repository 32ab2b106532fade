//! Which cached KV cells a new prompt can keep: the common prefix, plus runs of at least
//! `min_run` tokens that match the slot's cache further on (text kept after an edit, a moved
//! cursor, a nonce that changed near the start). Pure over token ids so it can be tested on its
//! own; the engine applies the plan with llama.cpp's per-sequence remove, copy and shift.

use std::collections::HashMap;
use std::hash::Hash;

/// A run of tokens the cache already holds: `len` tokens at `cached_at` in the cache that the
/// prompt has at `prompt_at`. Their cells move by `prompt_at - cached_at` positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub cached_at: usize,
    pub prompt_at: usize,
    pub len: usize,
}

impl Run {
    fn prompt_end(&self) -> usize {
        self.prompt_at + self.len
    }

    fn cached_end(&self) -> usize {
        self.cached_at + self.len
    }
}

/// What a prompt keeps of a slot's cache: `prefix` tokens in place, then `runs` in prompt
/// order (each after the previous in the cache and in the prompt). Everything else is evaluated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReusePlan {
    pub prefix: usize,
    pub runs: Vec<Run>,
}

impl ReusePlan {
    /// Tokens kept in shifted runs.
    pub fn shifted(&self) -> usize {
        self.runs.iter().map(|r| r.len).sum()
    }

    /// Tokens kept in all.
    pub fn kept(&self) -> usize {
        self.prefix + self.shifted()
    }
}

/// Tokens an anchor hashes: short enough to find runs of `min_run`, long enough to be rare.
const ANCHOR: usize = 8;
/// Places in the cache tried for one anchor; repetitive code would otherwise make it quadratic.
const CANDIDATES_PER_ANCHOR: usize = 16;
/// Blocks the chaining considers.
const MAX_BLOCKS: usize = 512;

/// Plans the reuse of `cached` for `prompt`. At least the prompt's last token is always left to
/// evaluate (its logits are needed). `min_run == 0` or `max_runs == 0` keeps only the prefix.
pub fn plan<T: Copy + Eq + Hash>(
    cached: &[T],
    prompt: &[T],
    min_run: usize,
    max_runs: usize,
) -> ReusePlan {
    let must_evaluate_from = prompt.len().saturating_sub(1);
    let prefix = common_prefix(cached, prompt).min(must_evaluate_from);
    let mut plan = ReusePlan {
        prefix,
        runs: Vec::new(),
    };
    if min_run == 0 || max_runs == 0 || prefix >= must_evaluate_from {
        return plan;
    }
    let blocks = matching_blocks(cached, prompt, prefix, min_run.max(ANCHOR));
    let mut runs = best_chain(&blocks);
    // The last prompt token is evaluated for its logits, so a run may not cover it.
    if let Some(last) = runs.last_mut() {
        if last.prompt_end() > must_evaluate_from {
            last.len = must_evaluate_from - last.prompt_at;
        }
    }
    runs.retain(|r| r.len >= min_run.max(1));
    // Each run needs a spare sequence while it waits for its place; keep the longest ones.
    if runs.len() > max_runs {
        let mut by_len: Vec<usize> = (0..runs.len()).collect();
        by_len.sort_by_key(|&i| std::cmp::Reverse(runs[i].len));
        let mut keep: Vec<usize> = by_len[..max_runs].to_vec();
        keep.sort_unstable();
        runs = keep.into_iter().map(|i| runs[i]).collect();
    }
    plan.runs = runs;
    plan
}

pub fn common_prefix<T: Eq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Maximal blocks where the prompt (from `from`) equals the cache (from `from`), at least
/// `min_len` long: left-maximal (the tokens before them differ) and extended as far as they go.
fn matching_blocks<T: Copy + Eq + Hash>(
    cached: &[T],
    prompt: &[T],
    from: usize,
    min_len: usize,
) -> Vec<Run> {
    if cached.len() < from + ANCHOR || prompt.len() < from + ANCHOR {
        return Vec::new();
    }
    let mut index: HashMap<&[T], Vec<usize>> = HashMap::new();
    for c in from..=cached.len() - ANCHOR {
        index.entry(&cached[c..c + ANCHOR]).or_default().push(c);
    }
    let mut blocks = Vec::new();
    for p in from..=prompt.len() - ANCHOR {
        let Some(places) = index.get(&prompt[p..p + ANCHOR]) else {
            continue;
        };
        for &c in places.iter().take(CANDIDATES_PER_ANCHOR) {
            // Not left-maximal: the block starting one token earlier covers this one.
            if p > from && c > from && prompt[p - 1] == cached[c - 1] {
                continue;
            }
            let len = common_prefix(&cached[c..], &prompt[p..]);
            if len >= min_len {
                blocks.push(Run {
                    cached_at: c,
                    prompt_at: p,
                    len,
                });
            }
        }
    }
    blocks
}

/// The chain of blocks, increasing in both the prompt and the cache, that keeps the most
/// tokens (quadratic in the blocks, so only the longest `MAX_BLOCKS` take part).
fn best_chain(blocks: &[Run]) -> Vec<Run> {
    let mut blocks = blocks.to_vec();
    if blocks.len() > MAX_BLOCKS {
        blocks.sort_by_key(|b| std::cmp::Reverse(b.len));
        blocks.truncate(MAX_BLOCKS);
    }
    blocks.sort_by_key(|b| (b.prompt_at, b.cached_at));
    // best[i]: (tokens kept by the best chain ending in block i, its previous block).
    let mut best: Vec<(usize, Option<usize>)> = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let mut entry = (block.len, None);
        for (j, before) in blocks[..i].iter().enumerate() {
            if before.prompt_end() <= block.prompt_at && before.cached_end() <= block.cached_at {
                let total = best[j].0 + block.len;
                if total > entry.0 {
                    entry = (total, Some(j));
                }
            }
        }
        best.push(entry);
    }
    let Some(mut at) = (0..blocks.len()).max_by_key(|&i| (best[i].0, std::cmp::Reverse(i))) else {
        return Vec::new();
    };
    let mut chain = vec![blocks[at]];
    while let Some(previous) = best[at].1 {
        chain.push(blocks[previous]);
        at = previous;
    }
    chain.reverse();
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(range: std::ops::Range<u32>) -> Vec<u32> {
        range.collect()
    }

    /// Applies a plan the way the engine does and checks that the kept tokens are exactly the
    /// prompt's: the prefix in place, each run's cache tokens equal to the prompt's at its place.
    fn check(cached: &[u32], prompt: &[u32], plan: &ReusePlan) {
        assert_eq!(cached[..plan.prefix], prompt[..plan.prefix]);
        let mut prompt_end = plan.prefix;
        let mut cached_end = plan.prefix;
        for run in &plan.runs {
            assert!(
                run.prompt_at >= prompt_end && run.cached_at >= cached_end,
                "{plan:?}"
            );
            assert_eq!(
                cached[run.cached_at..run.cached_end()],
                prompt[run.prompt_at..run.prompt_end()]
            );
            prompt_end = run.prompt_end();
            cached_end = run.cached_end();
        }
        assert!(plan.kept() < prompt.len(), "the last token is evaluated");
    }

    #[test]
    fn appending_keeps_the_prefix_and_evaluates_the_rest() {
        let cached = tokens(0..100);
        let prompt = tokens(0..110);
        let plan = plan(&cached, &prompt, 32, 16);
        assert_eq!(
            plan,
            ReusePlan {
                prefix: 100,
                runs: vec![]
            }
        );
    }

    #[test]
    fn an_identical_prompt_still_evaluates_its_last_token() {
        let cached = tokens(0..100);
        let plan = plan(&cached, &cached, 32, 16);
        assert_eq!(plan.prefix, 99);
        assert!(plan.runs.is_empty());
    }

    #[test]
    fn a_changed_nonce_near_the_start_keeps_what_follows() {
        // [start][nonce][text][nonce][text] with a new nonce in both places.
        let mut cached = tokens(0..10);
        cached.extend([900, 901]);
        cached.extend(tokens(10..60));
        cached.extend([900, 901]);
        cached.extend(tokens(60..200));
        let mut prompt = tokens(0..10);
        prompt.extend([800, 801, 802]);
        prompt.extend(tokens(10..60));
        prompt.extend([800, 801, 802]);
        prompt.extend(tokens(60..205));
        let plan = plan(&cached, &prompt, 32, 16);
        check(&cached, &prompt, &plan);
        assert_eq!(plan.prefix, 10);
        assert_eq!(plan.runs.len(), 2, "{plan:?}");
        assert_eq!(plan.kept(), 10 + 50 + 140);
    }

    #[test]
    fn typing_in_the_middle_keeps_what_moved_after_it() {
        // Prefix-suffix-middle: [PRE] prefix [SUF] suffix [MID], a character typed at the cursor.
        let mut cached = vec![1000];
        cached.extend(tokens(0..300));
        cached.push(1001);
        cached.extend(tokens(500..600));
        cached.push(1002);
        let mut prompt = vec![1000];
        prompt.extend(tokens(0..300));
        prompt.push(42);
        prompt.push(1001);
        prompt.extend(tokens(500..600));
        prompt.push(1002);
        let plan = plan(&cached, &prompt, 32, 16);
        check(&cached, &prompt, &plan);
        assert_eq!(plan.prefix, 301);
        assert_eq!(
            plan.runs,
            vec![Run {
                cached_at: 301,
                prompt_at: 302,
                len: 101
            }],
            "[SUF] and the suffix move one place; [MID] is evaluated"
        );
    }

    #[test]
    fn a_cursor_jump_up_keeps_the_longest_chain_not_the_first_match() {
        // Suffix first: [SUF] s_old [PRE] p  ->  [SUF] middle s_old [PRE] p', where the text
        // `middle` also sits at the end of the cache. The best plan keeps s_old and p'.
        let middle = tokens(300..340);
        let s_old = tokens(400..500);
        let p = tokens(0..300);
        let mut cached = vec![1001];
        cached.extend(&s_old);
        cached.push(1000);
        cached.extend(&p);
        cached.extend(&middle);
        let mut prompt = vec![1001];
        prompt.extend(&middle);
        prompt.extend(&s_old);
        prompt.push(1000);
        prompt.extend(&p[..250]);
        let plan = plan(&cached, &prompt, 32, 16);
        check(&cached, &prompt, &plan);
        assert_eq!(plan.prefix, 1);
        assert_eq!(plan.kept(), 1 + 100 + 1 + 249, "{plan:?}");
    }

    #[test]
    fn short_runs_and_disabled_reuse_keep_only_the_prefix() {
        let mut cached = tokens(0..10);
        cached.extend(tokens(100..120));
        let mut prompt = tokens(0..10);
        prompt.push(7777);
        prompt.extend(tokens(100..121));
        assert!(plan(&cached, &prompt, 32, 16).runs.is_empty());
        let long_cached: Vec<u32> = tokens(0..10).into_iter().chain(tokens(100..200)).collect();
        let long_prompt: Vec<u32> = tokens(0..10)
            .into_iter()
            .chain([7777])
            .chain(tokens(100..201))
            .collect();
        assert_eq!(plan(&long_cached, &long_prompt, 32, 16).runs.len(), 1);
        assert!(plan(&long_cached, &long_prompt, 0, 16).runs.is_empty());
        assert!(plan(&long_cached, &long_prompt, 32, 0).runs.is_empty());
    }

    #[test]
    fn at_most_max_runs_are_kept_the_longest_first() {
        // Five runs of different lengths separated by changed tokens.
        let lens = [40, 90, 50, 70, 60];
        let mut cached = vec![];
        let mut prompt = vec![];
        let mut next = 0;
        for (i, len) in lens.iter().enumerate() {
            cached.push(5000 + i as u32);
            prompt.push(6000 + i as u32);
            cached.extend(next..next + len);
            prompt.extend(next..next + len);
            next += len;
        }
        prompt.push(9999);
        let plan = plan(&cached, &prompt, 32, 2);
        check(&cached, &prompt, &plan);
        let kept: Vec<usize> = plan.runs.iter().map(|r| r.len).collect();
        assert_eq!(kept, vec![90, 70]);
    }

    #[test]
    fn repetitive_text_stays_bounded_and_correct() {
        let cached: Vec<u32> = (0..4000).map(|i| i % 3).collect();
        let mut prompt: Vec<u32> = (0..2000).map(|i| i % 3).collect();
        prompt.push(99);
        prompt.extend((0..2000).map(|i| i % 3));
        let plan = plan(&cached, &prompt, 32, 16);
        check(&cached, &prompt, &plan);
        assert!(plan.kept() >= 3900, "{}", plan.kept());
    }
}
