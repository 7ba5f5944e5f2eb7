package builtins

import (
	"context"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/flowrun/flowrun/action"
)

func textSummarize() *action.Spec {
	return &action.Spec{
		Name:    "text.summarize",
		Summary: "Summarize text offline by picking its most representative sentences.",
		Doc: `Builds an extractive summary without any model or network: the text is split into
sentences, every word that is not an English stopword is counted (case-insensitively),
each sentence scores the sum of the counts of its words, and the ` + "`max_sentences`" + `
best-scoring sentences are kept, in their original order. Ties go to the earlier
sentence, so the same text always gives the same summary.

Sentences end at ` + "`.`, `!` or `?`" + ` followed by white space and a character that is not
a lower-case letter (so "e.g. this" stays one sentence), at ` + "`。！？`" + `, and at blank
lines. Inside a chosen sentence, runs of white space (line breaks included) become one
space. An empty text gives an empty summary.`,
		Params: []action.Param{
			{Name: "text", Type: action.String, Required: true, Doc: "The text to summarize."},
			{Name: "max_sentences", Type: action.Integer, Default: 3, Doc: "How many sentences the summary keeps at most; at least 1."},
		},
		Output: []action.Field{
			{Name: "summary", Type: action.String, Doc: "The chosen sentences, in their original order, joined by single spaces."},
			{Name: "sentences", Type: action.Array, Doc: "The chosen sentences as a list of strings."},
			{Name: "words", Type: action.Integer, Doc: "The number of words (runs of non-space characters) in the whole input text."},
		},
		Examples: []action.Example{{
			Summary: "Keep the two sentences that say the most about the text's recurring words.",
			With: `text: >-
  Go is a language for building reliable software. The weather was nice today.
  Go programs compile to fast native binaries. Reliable software needs good tools,
  and Go ships them.
max_sentences: 2`,
			Output: `summary: Go is a language for building reliable software. Reliable software needs good tools, and Go ships them.
sentences:
  - Go is a language for building reliable software.
  - Reliable software needs good tools, and Go ships them.
words: 29`,
		}},
		ReadOnly: true,
		Func:     runSummarize,
	}
}

func runSummarize(_ context.Context, call *action.Call, _ *action.Env) (map[string]any, error) {
	text := call.Params.String("text")
	n := call.Params.Int("max_sentences")
	if n < 1 {
		return nil, action.Permanentf("parameter \"max_sentences\": must be at least 1, got %d", n)
	}
	sents := sentences(text)
	for i, s := range sents {
		sents[i] = strings.Join(strings.Fields(s), " ")
	}
	freq := map[string]int{}
	for _, s := range sents {
		for _, w := range contentWords(s) {
			freq[w]++
		}
	}
	order := make([]int, len(sents))
	score := make([]int, len(sents))
	for i, s := range sents {
		order[i] = i
		for _, w := range contentWords(s) {
			score[i] += freq[w]
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return score[order[a]] > score[order[b]] })
	if len(order) > n {
		order = order[:n]
	}
	sort.Ints(order)
	chosen := make([]any, len(order))
	parts := make([]string, len(order))
	for i, idx := range order {
		chosen[i] = sents[idx]
		parts[i] = sents[idx]
	}
	return map[string]any{
		"summary":   strings.Join(parts, " "),
		"sentences": chosen,
		"words":     len(strings.Fields(text)),
	}, nil
}

func textSplit() *action.Spec {
	return &action.Spec{
		Name:    "text.split",
		Summary: "Split text into paragraphs, sentences or chunks of bounded size.",
		Doc: `Splits a text into a list of chunks, typically to fan them out with a ` + "`map`" + ` node.
Every chunk is trimmed of surrounding white space and empty chunks are dropped.

- ` + "`by: paragraph`" + ` splits at blank lines; line breaks inside a paragraph are kept.
- ` + "`by: sentence`" + ` splits where ` + "`text.summarize`" + ` sees a sentence end.
- ` + "`by: size`" + ` packs the text greedily into chunks of at most ` + "`size`" + ` characters
  (Unicode characters, not bytes), cutting at the last white space that fits. A single
  word longer than ` + "`size`" + ` becomes a chunk of its own and is not cut.`,
		Params: []action.Param{
			{Name: "text", Type: action.String, Required: true, Doc: "The text to split."},
			{Name: "by", Type: action.String, Default: "paragraph", Enum: []any{"paragraph", "sentence", "size"}, Doc: "Where to split: at blank lines, at sentence ends, or into chunks of at most `size` characters."},
			{Name: "size", Type: action.Integer, Default: 1000, Doc: "The largest chunk, in characters, for `by: size`; at least 1."},
		},
		Output: []action.Field{
			{Name: "chunks", Type: action.Array, Doc: "The chunks, in order, as a list of non-empty strings."},
		},
		Examples: []action.Example{
			{
				Summary: "Split at blank lines.",
				With:    "text: \"First paragraph,\\nstill the first.\\n\\nSecond paragraph.\"",
				Output:  "chunks:\n  - |-\n    First paragraph,\n    still the first.\n  - Second paragraph.",
			},
			{
				Summary: "Split into sentences.",
				With:    "text: It rained. We stayed in, e.g. to read! Did it stop? \"Yes.\" 3.5 mm fell.\nby: sentence",
				Output:  "chunks:\n  - It rained.\n  - We stayed in, e.g. to read!\n  - Did it stop?\n  - '\"Yes.\"'\n  - 3.5 mm fell.",
			},
			{
				Summary: "Pack words into chunks of at most 12 characters.",
				With:    "text: the quick brown fox jumps over the lazy dog\nby: size\nsize: 12",
				Output:  "chunks: [the quick, brown fox, jumps over, the lazy dog]",
			},
		},
		ReadOnly: true,
		Func:     runSplit,
	}
}

func runSplit(_ context.Context, call *action.Call, _ *action.Env) (map[string]any, error) {
	text := call.Params.String("text")
	var chunks []string
	switch by := call.Params.String("by"); by {
	case "paragraph":
		chunks = paragraphs(text)
	case "sentence":
		chunks = sentences(text)
	case "size":
		size := call.Params.Int("size")
		if size < 1 {
			return nil, action.Permanentf("parameter \"size\": must be at least 1, got %d", size)
		}
		chunks = sizedChunks(text, size)
	default:
		return nil, action.Permanentf("parameter \"by\": unknown mode %q", by)
	}
	out := make([]any, 0, len(chunks))
	for _, c := range chunks {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return map[string]any{"chunks": out}, nil
}

func textJoin() *action.Spec {
	return &action.Spec{
		Name:    "text.join",
		Summary: "Join a list of values into one text.",
		Doc: `Joins the elements of ` + "`parts`" + ` with ` + "`separator`" + `. Strings are joined as they are;
any other value (number, boolean, null, list, object) is written as compact JSON, with
object keys sorted, so the result is deterministic.`,
		Params: []action.Param{
			{Name: "parts", Type: action.Array, Required: true, Doc: "The values to join; strings as they are, other values as JSON."},
			{Name: "separator", Type: action.String, Default: "\n", Doc: "The text put between two parts."},
		},
		Output: []action.Field{
			{Name: "text", Type: action.String, Doc: "The joined text."},
		},
		Examples: []action.Example{{
			Summary: "Join strings and other values.",
			With:    "parts: [alpha, 2, true, {k: v}]\nseparator: \", \"",
			Output:  `text: 'alpha, 2, true, {"k":"v"}'`,
		}},
		ReadOnly: true,
		Func:     runJoin,
	}
}

func runJoin(_ context.Context, call *action.Call, _ *action.Env) (map[string]any, error) {
	parts, sep := call.Params.List("parts"), call.Params.String("separator")
	texts := make([]string, len(parts))
	for i, p := range parts {
		if s, ok := p.(string); ok {
			texts[i] = s
			continue
		}
		s, err := jsonText(p)
		if err != nil {
			return nil, action.Permanentf("parts[%d]: %v", i, err)
		}
		texts[i] = s
	}
	return map[string]any{"text": strings.Join(texts, sep)}, nil
}

func textCount() *action.Spec {
	return &action.Spec{
		Name:    "text.count",
		Summary: "Count the words, characters and lines of a text.",
		Doc: `Counts like ` + "`wc`" + ` does, but in Unicode characters: ` + "`words`" + ` are runs of
non-space characters, ` + "`chars`" + ` are Unicode characters (not bytes), and ` + "`lines`" + ` are
lines of text, where a final line break does not start another line. An empty text has
0 lines.`,
		Params: []action.Param{
			{Name: "text", Type: action.String, Required: true, Doc: "The text to count."},
		},
		Output: []action.Field{
			{Name: "words", Type: action.Integer, Doc: "The number of words (runs of non-space characters)."},
			{Name: "chars", Type: action.Integer, Doc: "The number of Unicode characters."},
			{Name: "lines", Type: action.Integer, Doc: "The number of lines; 0 for an empty text."},
		},
		Examples: []action.Example{{
			Summary: "Count a short text.",
			With:    "text: \"héllo wörld\\nsecond line\\n\"",
			Output:  "words: 4\nchars: 24\nlines: 2",
		}},
		ReadOnly: true,
		Func:     runCount,
	}
}

func runCount(_ context.Context, call *action.Call, _ *action.Env) (map[string]any, error) {
	text := call.Params.String("text")
	lines := 0
	if text != "" {
		lines = strings.Count(text, "\n")
		if !strings.HasSuffix(text, "\n") {
			lines++
		}
	}
	return map[string]any{
		"words": len(strings.Fields(text)),
		"chars": utf8.RuneCountInString(text),
		"lines": lines,
	}, nil
}

// paragraphs splits text at blank lines.
func paragraphs(text string) []string {
	var out []string
	var cur []string
	flush := func() {
		if p := strings.TrimSpace(strings.Join(cur, "\n")); p != "" {
			out = append(out, p)
		}
		cur = cur[:0]
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		cur = append(cur, strings.TrimRight(line, "\r"))
	}
	flush()
	return out
}

// sentences splits text into trimmed, non-empty sentences.
func sentences(text string) []string {
	var out []string
	start := 0
	cut := func(end int) {
		if s := strings.TrimSpace(text[start:end]); s != "" {
			out = append(out, s)
		}
		start = end
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		j := i + size
		switch {
		case r == '\n':
			// A blank line ends a sentence.
			k := j
			for k < len(text) && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r') {
				k++
			}
			if k < len(text) && text[k] == '\n' {
				cut(i)
				j = k + 1
			}
		case r == '.' || r == '!' || r == '?' || r == '。' || r == '！' || r == '？':
			j = skipClosers(text, j)
			if r != '.' && r != '!' && r != '?' {
				cut(j)
				break
			}
			if j == len(text) {
				cut(j)
				break
			}
			next, _ := utf8.DecodeRuneInString(text[j:])
			if !unicode.IsSpace(next) {
				break
			}
			k := j
			for k < len(text) {
				c, n := utf8.DecodeRuneInString(text[k:])
				if !unicode.IsSpace(c) {
					break
				}
				k += n
			}
			if c, _ := utf8.DecodeRuneInString(text[k:]); k == len(text) || !unicode.IsLower(c) {
				cut(j)
			}
		}
		i = j
	}
	cut(len(text))
	return out
}

// skipClosers skips further sentence terminators and closing quotes or brackets.
func skipClosers(text string, i int) int {
	for i < len(text) {
		r, n := utf8.DecodeRuneInString(text[i:])
		if !strings.ContainsRune(`.!?。！？"')]}’”»`, r) {
			break
		}
		i += n
	}
	return i
}

// sizedChunks packs text into chunks of at most size runes, cut at white space.
func sizedChunks(text string, size int) []string {
	rs := []rune(text)
	var out []string
	for i := 0; ; {
		for i < len(rs) && unicode.IsSpace(rs[i]) {
			i++
		}
		if i >= len(rs) {
			return out
		}
		if len(rs)-i <= size {
			return append(out, strings.TrimSpace(string(rs[i:])))
		}
		end := -1
		for j := i + size; j > i; j-- {
			if unicode.IsSpace(rs[j]) {
				end = j
				break
			}
		}
		if end < 0 { // one word longer than size: keep it whole
			end = i + size
			for end < len(rs) && !unicode.IsSpace(rs[end]) {
				end++
			}
		}
		out = append(out, strings.TrimSpace(string(rs[i:end])))
		i = end
	}
}

// contentWords returns the lower-cased words of s that are not stopwords.
func contentWords(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' && r != '’'
	}) {
		w = strings.Trim(w, "'’")
		if w != "" && !stopwords[w] {
			out = append(out, w)
		}
	}
	return out
}

// stopwords are common English words that say little about a sentence's topic.
// It is read-only.
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about above after again against all am an and any are
		aren't as at be because been before being below between both but by can can't cannot
		could couldn't did didn't do does doesn't doing don't down during each few for from
		further had hadn't has hasn't have haven't having he he'd he'll he's her here here's
		hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's
		its itself just let's me more most mustn't my myself no nor not now of off on once only
		or other ought our ours ourselves out over own same shan't she she'd she'll she's
		should shouldn't so some such than that that's the their theirs them themselves then
		there there's these they they'd they'll they're they've this those through to too
		under until up very was wasn't we we'd we'll we're we've were weren't what what's when
		when's where where's which while who who's whom why why's will with won't would
		wouldn't you you'd you'll you're you've your yours yourself yourselves also may might
		must shall us`) {
		m[w] = true
	}
	return m
}()
