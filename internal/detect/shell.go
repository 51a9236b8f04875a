package detect

import "strings"

// maxScript bounds the script text looked at; detection needs the first few
// commands, not a whole inlined program.
const maxScript = 64 << 10

// shellKeywords open compound commands or negate; the command proper follows
// them (`if pytest; then ...`, `! make`). `time` is left to the wrapper
// rules, which know its options.
var shellKeywords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true,
	"do": true, "done": true, "while": true, "until": true,
	"{": true, "}": true, "!": true,
}

// splitScript splits a POSIX shell script into its simple commands' words,
// in order: enough of the shell grammar to find which programs it runs.
// It honours quotes, backslashes, comments, the operators ; & | ( ) and
// newlines, and drops redirections; $(...) and `...` stay inside their word
// unexpanded. Leading keywords are dropped. It never fails: text it does not
// understand just yields odd words, which match no command.
func splitScript(script string) [][]string {
	if len(script) > maxScript {
		script = script[:maxScript]
	}
	var (
		cmds     [][]string
		words    []string
		word     strings.Builder
		inWord   bool // word has started (it may be empty: "")
		redirect bool // the next word is a redirection target
	)
	endWord := func() {
		if !inWord {
			return
		}
		if redirect {
			redirect = false
		} else {
			if len(words) > 0 || !shellKeywords[word.String()] {
				words = append(words, word.String())
			}
		}
		word.Reset()
		inWord = false
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			endWord()
		case c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')':
			endCmd()
		case c == '#' && !inWord:
			for i < len(script) && script[i] != '\n' {
				i++
			}
			endCmd()
		case c == '<' || c == '>':
			// "2>&1": the fd number was read as a word of digits.
			if inWord && isDigits(word.String()) {
				word.Reset()
				inWord = false
			} else {
				endWord()
			}
			for i+1 < len(script) && strings.IndexByte("<>&|-", script[i+1]) >= 0 {
				i++
			}
			redirect = true
			// A target glued to the operator (">&2", ">out") is its own word.
		case c == '\\':
			inWord = true
			if i+1 < len(script) {
				i++
				if script[i] != '\n' { // backslash-newline continues the line
					word.WriteByte(script[i])
				}
			}
		case c == '\'':
			inWord = true
			end := len(script) // unterminated: the rest is quoted
			if j := strings.IndexByte(script[i+1:], '\''); j >= 0 {
				end = i + 1 + j
			}
			word.WriteString(script[i+1 : end])
			i = end
		case c == '"':
			inWord = true
			for i++; i < len(script) && script[i] != '"'; i++ {
				if script[i] == '\\' && i+1 < len(script) && strings.IndexByte("\"\\$`\n", script[i+1]) >= 0 {
					i++
				}
				word.WriteByte(script[i])
			}
		case c == '`':
			inWord = true
			end := len(script)
			if j := strings.IndexByte(script[i+1:], '`'); j >= 0 {
				end = i + 2 + j
			}
			word.WriteString(script[i:end])
			i = end - 1
		case c == '$' && i+1 < len(script) && script[i+1] == '(':
			inWord = true
			depth := 0
			start := i
			for ; i < len(script); i++ {
				if script[i] == '(' {
					depth++
				} else if script[i] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			word.WriteString(script[start:min(i+1, len(script))])
		default:
			inWord = true
			word.WriteByte(c)
		}
	}
	endCmd()
	return cmds
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
