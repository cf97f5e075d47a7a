//! Answering from a knowledge base: BM25 (the `bm25` crate: Unicode folding, stemming,
//! stop words) over each entry's question and keywords, plus a boost for every asked word
//! that is one of the entry's keywords. The bot answers when the best entry covers enough
//! of the question's meaningful words; otherwise it offers the closest questions.

use std::collections::HashSet;

use bm25::{Embedder, EmbedderBuilder, Language, Scorer, Tokenizer as _};

use super::faq::FaqEntry;

/// How much one asked keyword adds to an entry's BM25 score.
const KEYWORD_BOOST: f32 = 1.5;
/// How many close questions are suggested when the bot is unsure.
pub const SUGGESTIONS: usize = 3;

/// What the knowledge base says about a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A confident answer.
    Answer {
        /// Position of the entry.
        entry: usize,
        /// Its score (BM25 plus keyword boosts).
        score: f32,
        /// The share of the question's meaningful words the entry covers (0 to 1).
        coverage: f32,
    },
    /// Nothing confident: the closest entries, best first (possibly none).
    Unsure {
        /// Positions of the closest entries.
        closest: Vec<usize>,
    },
}

/// A knowledge base ready to answer.
pub struct FaqIndex {
    entries: Vec<FaqEntry>,
    embedder: Embedder,
    scorer: Scorer<usize>,
    tokens: Vec<HashSet<String>>,
    keywords: Vec<HashSet<String>>,
    tokenizer: bm25::DefaultTokenizer,
    threshold: f32,
}

impl std::fmt::Debug for FaqIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaqIndex")
            .field("entries", &self.entries.len())
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

fn document(e: &FaqEntry) -> String {
    let mut d = e.question.clone();
    for k in &e.keywords {
        d.push(' ');
        d.push_str(k);
    }
    d
}

impl FaqIndex {
    /// Indexes entries; `threshold` is the share of a question's meaningful words the best
    /// entry must cover for the bot to answer (0.5 means half).
    pub fn new(entries: Vec<FaqEntry>, threshold: f32) -> Self {
        let documents: Vec<String> = entries.iter().map(document).collect();
        let corpus: Vec<&str> = documents.iter().map(String::as_str).collect();
        let embedder: Embedder =
            EmbedderBuilder::with_fit_to_corpus(Language::English, &corpus).build();
        let tokenizer = bm25::DefaultTokenizer::new(Language::English);
        let mut scorer = Scorer::new();
        let mut tokens = Vec::with_capacity(entries.len());
        let mut keywords = Vec::with_capacity(entries.len());
        for (i, d) in documents.iter().enumerate() {
            scorer.upsert(&i, embedder.embed(d));
            tokens.push(tokenizer.tokenize(d).into_iter().collect());
        }
        for e in &entries {
            keywords.push(
                e.keywords
                    .iter()
                    .flat_map(|k| tokenizer.tokenize(k))
                    .collect(),
            );
        }
        Self {
            entries,
            embedder,
            scorer,
            tokens,
            keywords,
            tokenizer,
            threshold,
        }
    }

    /// The entries.
    pub fn entries(&self) -> &[FaqEntry] {
        &self.entries
    }

    /// The entry at a position.
    pub fn entry(&self, i: usize) -> Option<&FaqEntry> {
        self.entries.get(i)
    }

    /// Ranks the entries for a question.
    pub fn lookup(&self, question: &str) -> Lookup {
        let asked: HashSet<String> = self.tokenizer.tokenize(question).into_iter().collect();
        if asked.is_empty() {
            return Lookup::Unsure {
                closest: Vec::new(),
            };
        }
        let query = self.embedder.embed(question);
        let mut ranked: Vec<(usize, f32)> = self
            .scorer
            .matches(&query)
            .into_iter()
            .map(|d| {
                let boost = self
                    .keywords
                    .get(d.id)
                    .map_or(0, |k| asked.intersection(k).count());
                (d.id, d.score + KEYWORD_BOOST * boost as f32)
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let Some(&(best, score)) = ranked.first() else {
            return Lookup::Unsure {
                closest: Vec::new(),
            };
        };
        let covered = self
            .tokens
            .get(best)
            .map_or(0, |t| asked.intersection(t).count());
        let coverage = covered as f32 / asked.len() as f32;
        if coverage >= self.threshold {
            Lookup::Answer {
                entry: best,
                score,
                coverage,
            }
        } else {
            Lookup::Unsure {
                closest: ranked.iter().take(SUGGESTIONS).map(|r| r.0).collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kb() -> FaqIndex {
        let e = |q: &str, a: &str, k: &[&str]| FaqEntry {
            question: q.into(),
            answer: a.into(),
            keywords: k.iter().map(|s| (*s).to_owned()).collect(),
        };
        FaqIndex::new(
            vec![
                e(
                    "How do I reset my password?",
                    "Use the reset link.",
                    &["password", "forgot"],
                ),
                e(
                    "What are your opening hours?",
                    "9 to 5.",
                    &["hours", "open"],
                ),
                e(
                    "How do I delete my account?",
                    "Ask support.",
                    &["delete", "remove"],
                ),
                e(
                    "Do you ship abroad?",
                    "Yes, to the EU.",
                    &["shipping", "international"],
                ),
            ],
            0.5,
        )
    }

    #[test]
    fn answers_paraphrases_through_stemming_and_keywords() {
        let kb = kb();
        let Lookup::Answer { entry, .. } = kb.lookup("I forgot my PASSWORD, how to reset it?")
        else {
            panic!("no answer");
        };
        assert_eq!(entry, 0);
        let Lookup::Answer { entry, .. } = kb.lookup("When are you open?") else {
            panic!("no answer");
        };
        assert_eq!(entry, 1);
        let Lookup::Answer { entry, .. } = kb.lookup("international shipping") else {
            panic!("no answer");
        };
        assert_eq!(entry, 3);
    }

    #[test]
    fn unsure_offers_the_closest_questions() {
        let kb = kb();
        match kb.lookup("can I delete the photos in my password manager and my car") {
            Lookup::Unsure { closest } => {
                assert!(!closest.is_empty() && closest.len() <= SUGGESTIONS);
            }
            other => panic!("answered {other:?}"),
        }
        assert_eq!(
            kb.lookup("zebra quantum"),
            Lookup::Unsure {
                closest: Vec::new()
            }
        );
        assert_eq!(
            kb.lookup("the and of"),
            Lookup::Unsure {
                closest: Vec::new()
            }
        );
    }
}
