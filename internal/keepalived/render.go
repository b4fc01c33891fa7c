package keepalived

import (
	"fmt"
	"strings"
)

// Writer writes keepalived configuration: keyword lines, blocks and
// comments, indented four spaces a level. A word that keepalived would
// read differently from what was meant is an error, reported by Bytes.
type Writer struct {
	b     strings.Builder
	depth int
	err   error
}

func (w *Writer) indent() {
	w.b.WriteString(strings.Repeat("    ", w.depth))
}

// Comment writes text as comment lines at the current depth; an empty
// line of text becomes a bare "#".
func (w *Writer) Comment(text string) {
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		w.indent()
		if l == "" {
			w.b.WriteString("#\n")
			continue
		}
		w.b.WriteString("# " + l + "\n")
	}
}

// Line writes one keyword line.
func (w *Writer) Line(words ...string) {
	w.indent()
	w.b.WriteString(w.join(words) + "\n")
}

// Open writes "words {" and goes one level deeper.
func (w *Writer) Open(words ...string) {
	w.indent()
	w.b.WriteString(w.join(words) + " {\n")
	w.depth++
}

// Close ends the innermost block.
func (w *Writer) Close() {
	if w.depth == 0 {
		w.fail(fmt.Errorf("'}' without a block"))
		return
	}
	w.depth--
	w.indent()
	w.b.WriteString("}\n")
}

// Blank writes an empty line.
func (w *Writer) Blank() { w.b.WriteString("\n") }

// Bytes is what was written, or the first error.
func (w *Writer) Bytes() ([]byte, error) {
	if w.err == nil && w.depth != 0 {
		w.err = fmt.Errorf("%d blocks not closed", w.depth)
	}
	if w.err != nil {
		return nil, w.err
	}
	return []byte(w.b.String()), nil
}

func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *Writer) join(words []string) string {
	out := make([]string, len(words))
	for i, word := range words {
		q, err := quoteWord(word)
		if err != nil {
			w.fail(err)
		}
		out[i] = q
	}
	return strings.Join(out, " ")
}

// quoteWord writes a word so that keepalived reads it back as one word:
// bare, or in double quotes when it holds blanks or characters that
// would start a comment or a block. Double quotes and backslashes cannot
// be written safely in every keepalived version.
func quoteWord(word string) (string, error) {
	if word == "" {
		return `""`, nil
	}
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c == '"' || c == '\\' || c < ' ' || c == 0x7f {
			return "", fmt.Errorf("cannot write %q in keepalived configuration", word)
		}
	}
	if strings.ContainsAny(word, " #!{}") {
		return `"` + word + `"`, nil
	}
	return word, nil
}

// ScriptCommand is the single argument of a script line for the command
// args: the words joined by blanks, each in single quotes if it holds a
// blank, so that keepalived splits it back into args.
func ScriptCommand(args []string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("empty command")
	}
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, `"'\`) || strings.IndexFunc(a, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			return "", fmt.Errorf("cannot pass %q to a keepalived script", a)
		}
		if strings.ContainsAny(a, " \t") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " "), nil
}
