package doctor

import (
	"path"
	"strings"
)

// What a vrrp_script's command runs, read from the configuration alone.
// keepalived execs the program directly, with no shell (lib/notify.c,
// system_call_script), except for a command that starts "</" (the shell
// checks that a file opens). The program may be a wrapper (timeout, env,
// nice, sudo, sh -c) that runs another one: that one does the check.

// command is what a script line runs.
type command struct {
	// args is what keepalived execs; for a "</" line, the words it
	// hands to /bin/sh.
	args []string
	// system is true for a line keepalived runs with /bin/sh ("</").
	system bool
	// argv is the program that does the check, after the wrappers: args
	// itself when there is none.
	argv []string
	// via are the wrappers, outermost first ("timeout", "sh -c").
	via []string
	// script is the shell text of sh -c, "" otherwise; then argv is its
	// first command.
	script string
	// problems are what makes the line not do what it seems to.
	problems []string
}

// maxWrappers bounds unwrapping ("timeout 1 timeout 1 ...").
const maxWrappers = 8

// readCommand reads the argv keepalived runs for a script line.
func readCommand(args []string) command {
	c := command{args: args, argv: args}
	if len(args) == 0 {
		return c
	}
	// check_script_secure: "<" then blanks then "/" is run by system().
	if a := args[0]; strings.HasPrefix(a, "<") && strings.HasPrefix(strings.TrimLeft(a[1:], " \t"), "/") {
		c.system = true
		if len(args) > 1 {
			// cmd_str_r quotes every word after the first.
			c.problems = append(c.problems, "keepalived runs the line with /bin/sh but puts each word after the first in single quotes: "+
				quoteWords(args[1:])+" are words, not shell syntax: the shell runs a command named '"+args[1]+"'")
		}
		return c
	}
	c.unwrap()
	// The text of sh -c is the shell's; every other word is an argument.
	var words []string
	for _, w := range args[1:] {
		if c.script == "" || w != c.script {
			words = append(words, w)
		}
	}
	if ops := shellWords(words); len(ops) > 0 {
		c.problems = append(c.problems, "keepalived runs "+args[0]+" directly, with no shell: "+strings.Join(ops, " ")+
			" and the words around them are passed to "+path.Base(args[0])+" as arguments")
	}
	return c
}

func quoteWords(ws []string) string {
	q := make([]string, 0, len(ws))
	for _, w := range ws {
		q = append(q, "'"+w+"'")
	}
	if len(q) > 4 {
		q = append(q[:4], "...")
	}
	return strings.Join(q, " ")
}

// shellOperators are words a shell would read as syntax.
var shellOperators = []string{"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>>", "&>", "2>&1", "1>&2", ">&2", "|&", ";;"}

// shellWords lists the words that a shell would have read as syntax
// (pipes, lists, redirections, substitutions, variables): without a
// shell they are plain arguments.
func shellWords(ws []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] && len(out) < 6 {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, w := range ws {
		if contains(shellOperators, w) {
			add(w)
			continue
		}
		if strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>") || strings.HasPrefix(w, "&>") || strings.HasPrefix(w, "1>") {
			add(">")
		}
		if strings.Contains(w, "|") {
			add("|")
		}
		if strings.Contains(w, "&&") {
			add("&&")
		}
		if strings.HasSuffix(w, ";") {
			add(";")
		}
		if strings.Contains(w, "$(") {
			add("$(...)")
		}
		if strings.Contains(w, "`") {
			add("`...`")
		}
		if hasVariable(w) {
			add("$VARIABLE")
		}
	}
	return out
}

// hasVariable reports a shell variable: "$" then a letter, "_" or "{".
func hasVariable(w string) bool {
	for i := strings.IndexByte(w, '$'); i >= 0 && i+1 < len(w); {
		c := w[i+1]
		if c == '{' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			return true
		}
		j := strings.IndexByte(w[i+1:], '$')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// unwrap strips the wrappers off c.argv.
func (c *command) unwrap() {
	for range maxWrappers {
		if len(c.argv) == 0 {
			return
		}
		name := path.Base(c.argv[0])
		var rest []string
		var ok bool
		switch name {
		case "timeout":
			rest, ok = afterOptions(c.argv[1:], "sk", []string{"signal", "kill-after"}, 1)
		case "env":
			rest, ok = afterOptions(c.argv[1:], "uCS", []string{"unset", "chdir", "split-string"}, 0)
			for ok && len(rest) > 0 && strings.Contains(rest[0], "=") {
				rest = rest[1:]
			}
		case "nice":
			rest, ok = afterOptions(c.argv[1:], "n", []string{"adjustment"}, 0)
		case "ionice", "chrt", "setsid", "stdbuf", "nohup":
			rest, ok = afterOptions(c.argv[1:], "cnptoeiu", nil, 0)
			if name == "chrt" && ok && len(rest) > 0 {
				rest = rest[1:] // the priority
			}
		case "sudo":
			rest, ok = afterOptions(c.argv[1:], "ughpCDrtTU", []string{"user", "group", "host", "prompt", "close-from", "chdir", "role", "type", "other-user", "command-timeout"}, 0)
		case "sh", "bash", "dash", "ksh", "zsh":
			c.unwrapShell()
			return
		default:
			return
		}
		if !ok || len(rest) == 0 {
			c.problems = append(c.problems, name+" is given no command to run")
			c.argv = nil
			return
		}
		c.via = append(c.via, name)
		c.argv = rest
	}
}

// unwrapShell reads "sh [options] -c TEXT [NAME ARGS...]" or "sh FILE".
func (c *command) unwrapShell() {
	name := path.Base(c.argv[0])
	ws := c.argv[1:]
	script := false
	for len(ws) > 0 && strings.HasPrefix(ws[0], "-") && ws[0] != "-" && ws[0] != "--" {
		if !strings.HasPrefix(ws[0], "--") && strings.Contains(ws[0], "c") {
			script = true
		}
		if (ws[0] == "-o" || ws[0] == "-O") && len(ws) > 1 {
			ws = ws[1:] // the option's name
		}
		ws = ws[1:]
	}
	if len(ws) > 0 && ws[0] == "--" {
		ws = ws[1:]
	}
	if len(ws) == 0 {
		c.problems = append(c.problems, name+" is given nothing to run: it reads commands from /dev/null and exits 0")
		c.argv = nil
		return
	}
	if !script {
		c.via = append(c.via, name)
		c.argv = ws // a script file the shell reads
		return
	}
	c.via = append(c.via, name+" -c")
	c.script = ws[0]
	cmds := shellCommands(ws[0])
	if len(cmds) == 0 || len(cmds[0]) == 0 {
		c.argv = nil
		return
	}
	c.argv = cmds[0]
	c.unwrap()
}

// afterOptions skips a wrapper's options: single-letter ones in withArg
// and long ones in longWithArg take an argument (glued or next); then
// positional words before the command (timeout's duration). ok is false
// when the words run out.
func afterOptions(ws []string, withArg string, longWithArg []string, positional int) ([]string, bool) {
	for len(ws) > 0 {
		w := ws[0]
		switch {
		case w == "--":
			ws = ws[1:]
			return skip(ws, positional)
		case strings.HasPrefix(w, "--"):
			name, _, glued := strings.Cut(w[2:], "=")
			ws = ws[1:]
			if !glued && contains(longWithArg, name) && len(ws) > 0 {
				ws = ws[1:]
			}
		case strings.HasPrefix(w, "-") && len(w) > 1 && !isNumber(w):
			ws = ws[1:]
			// -s KILL, -sKILL, -vs KILL: a letter that takes an
			// argument takes the rest of the word or the next word.
			for i := 1; i < len(w); i++ {
				if strings.IndexByte(withArg, w[i]) >= 0 {
					if i == len(w)-1 && len(ws) > 0 {
						ws = ws[1:]
					}
					break
				}
			}
		case strings.HasPrefix(w, "-") && len(w) > 1: // nice -10
			ws = ws[1:]
		default:
			return skip(ws, positional)
		}
	}
	return nil, false
}

func skip(ws []string, n int) ([]string, bool) {
	if len(ws) < n {
		return nil, false
	}
	return ws[n:], true
}

func isNumber(w string) bool {
	w = strings.TrimPrefix(w, "-")
	return w != "" && strings.Trim(w, "0123456789") == ""
}

// maxShellText bounds what shellCommands reads.
const maxShellText = 4096

// shellCommands splits a shell text into its simple commands, each its
// words with quotes removed, as far as the doctor needs it: quotes,
// backslashes, and the operators | || && ; & between commands.
// Substitutions and redirections stay in the words; it does not run or
// expand anything.
func shellCommands(text string) [][]string {
	if len(text) > maxShellText {
		text = text[:maxShellText]
	}
	var cmds [][]string
	var cur []string
	var w strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			cur = append(cur, w.String())
			w.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(cur) > 0 {
			cmds = append(cmds, cur)
			cur = nil
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\'':
			inWord = true
			j := strings.IndexByte(text[i+1:], '\'')
			if j < 0 {
				w.WriteString(text[i+1:])
				i = len(text)
				continue
			}
			w.WriteString(text[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			for i++; i < len(text) && text[i] != '"'; i++ {
				if text[i] == '\\' && i+1 < len(text) && strings.IndexByte("$`\"\\\n", text[i+1]) >= 0 {
					i++
				}
				w.WriteByte(text[i])
			}
		case c == '\\':
			if i+1 < len(text) {
				i++
				if text[i] != '\n' {
					inWord = true
					w.WriteByte(text[i])
				}
			}
		case c == '|' || c == ';' || c == '&' || c == '\n':
			if c == '&' && w.Len() > 0 && (strings.HasSuffix(w.String(), ">") || strings.HasSuffix(w.String(), "<")) {
				w.WriteByte(c) // 2>&1
				continue
			}
			endCmd()
		case c == ' ' || c == '\t':
			endWord()
		case c == '#' && !inWord:
			for i < len(text) && text[i] != '\n' {
				i++
			}
			endCmd()
		default:
			inWord = true
			w.WriteByte(c)
		}
	}
	endCmd()
	return cmds
}

// urls are the words of argv that name an HTTP address: with a scheme,
// or HOST:PORT[/PATH] as curl takes them.
func urls(argv []string) []string {
	var out []string
	for _, w := range argv[min(1, len(argv)):] {
		if strings.HasPrefix(w, "-") {
			continue
		}
		if strings.Contains(w, "://") {
			out = append(out, w)
			continue
		}
		hostPort, _, _ := strings.Cut(w, "/")
		if i := strings.LastIndexByte(hostPort, ':'); i > 0 && i < len(hostPort)-1 && isNumber(hostPort[i+1:]) {
			out = append(out, w)
		}
	}
	return out
}

// httpClients are programs that ask a URL.
var httpClients = []string{"curl", "wget"}

// curlFails reports whether a curl command line exits non-zero on an
// HTTP error status (--fail, -f in a cluster of short options).
func curlFails(argv []string) bool {
	for _, w := range argv[1:] {
		switch {
		case w == "--fail" || w == "--fail-with-body":
			return true
		case strings.HasPrefix(w, "-") && !strings.HasPrefix(w, "--") && strings.ContainsRune(w, 'f'):
			return true
		}
	}
	return false
}

// shellURLs are the URLs the curl and wget commands of a shell text ask.
func shellURLs(text string) []string {
	var out []string
	for _, c := range shellCommands(text) {
		if contains(httpClients, path.Base(c[0])) {
			out = append(out, urls(c)...)
		}
	}
	return out
}
