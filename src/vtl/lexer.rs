//! The token manager: a port of the lexical states and tokens of Apache Velocity 1.7's
//! JavaCC grammar (`Parser.jjt`), so that text, whitespace and directives split exactly as
//! Velocity splits them (this is where Velocity's whitespace "gobbling" comes from).
//!
//! Like JavaCC, every lexical state has a list of rules in declaration order; at each
//! position the longest match wins, and the first declared rule wins a tie. MORE rules
//! accumulate into the next token's image, SKIP rules drop what they matched (and any MORE
//! prefix), and SPECIAL rules make "special tokens" that are attached to the next real token
//! (Velocity prints their `$`/`#` characters back as text). Token actions push, pop and
//! switch states exactly as in the grammar.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Default,
    PreDirective,
    Directive,
    Reference,
    RefModifier,
    RefMod2,
    RefIndex,
    InSingleLineComment,
    InFormalComment,
    InMultiLineComment,
    InTextblock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Eof,
    IndexLBracket,
    IndexRBracket,
    LBracket,
    RBracket,
    Comma,
    DoubleDot,
    Colon,
    LeftCurley,
    RightCurley,
    LParen,
    RParen,
    RefMod2RParen,
    EscapeDirective,
    SetDirective,
    SingleLineCommentStart,
    DoubleEscape,
    Escape,
    Text,
    SingleLineComment,
    FormalComment,
    MultiLineComment,
    Textblock,
    Whitespace,
    StringLiteral,
    True,
    False,
    Newline,
    Minus,
    Plus,
    Multiply,
    Divide,
    Modulus,
    LogicalAnd,
    LogicalOr,
    LogicalLt,
    LogicalLe,
    LogicalGt,
    LogicalGe,
    LogicalEquals,
    LogicalNotEquals,
    LogicalNot,
    Equals,
    End,
    IfDirective,
    ElseifDirective,
    ElseDirective,
    IntegerLiteral,
    FloatingPointLiteral,
    Word,
    BracketedWord,
    Identifier,
    Dot,
    LCurly,
    RCurly,
    EmptyIndex,
}

/// One token. `start..end` is its image in the source (MORE prefixes included); `image_dot`
/// marks a DOT token whose image Velocity rewrites to ".". `special` is the text Velocity
/// reconstructs from the special tokens before it (NodeUtils.getSpecialText).
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub image_dot: bool,
    pub special: Option<Box<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    IndexLBracket,
    IndexRBracket,
    LBracket,
    RBracket,
    Comma,
    DoubleDot,
    Colon,
    LeftCurley,
    RightCurley,
    LParen,
    RParen,
    RefMod2RParen,
    EscapeDirective,
    SetDirective,
    // MORE, in every state
    Dollar,
    DollarBang,
    TextblockStart,
    FormalCommentStart,
    MultiCommentStart,
    Hash,
    SingleLineCommentStart,
    DoubleEscape,
    Escape,
    Text,
    SingleLineComment,
    FormalComment,
    MultiLineComment,
    Textblock,
    SkipAny,
    MoreAny,
    Whitespace,
    StringLiteral,
    True,
    False,
    Newline,
    Minus,
    Plus,
    Multiply,
    Divide,
    Modulus,
    LogicalAnd,
    LogicalOr,
    LogicalLt,
    LogicalLe,
    LogicalGt,
    LogicalGe,
    LogicalEquals,
    LogicalNotEquals,
    LogicalNot,
    Equals,
    End,
    IfDirective,
    ElseifDirective,
    ElseDirective,
    IntegerLiteral,
    FloatingPointLiteral,
    Word,
    BracketedWord,
    Identifier,
    Dot,
    LCurly,
    RCurly,
    ReferenceTerminator,
    DirectiveTerminator,
    EmptyIndex,
}

use Rule as R;

const MORE_ALL: [Rule; 6] = [
    R::Dollar,
    R::DollarBang,
    R::TextblockStart,
    R::FormalCommentStart,
    R::MultiCommentStart,
    R::Hash,
];

// Rules of each lexical state, in the grammar's declaration order.
const DEFAULT_RULES: &[Rule] = &[
    R::EscapeDirective,
    R::SetDirective,
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::SingleLineCommentStart,
    R::DoubleEscape,
    R::Escape,
    R::Text,
    R::EmptyIndex,
];
const PRE_DIRECTIVE_RULES: &[Rule] = &[
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::SingleLineCommentStart,
    R::End,
    R::IfDirective,
    R::ElseifDirective,
    R::ElseDirective,
    R::IntegerLiteral,
    R::FloatingPointLiteral,
    R::Word,
    R::BracketedWord,
    R::DirectiveTerminator,
];
const DIRECTIVE_RULES: &[Rule] = &[
    R::LBracket,
    R::RBracket,
    R::Comma,
    R::DoubleDot,
    R::Colon,
    R::LeftCurley,
    R::RightCurley,
    R::LParen,
    R::RParen,
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::SingleLineCommentStart,
    R::Whitespace,
    R::StringLiteral,
    R::True,
    R::False,
    R::Newline,
    R::Minus,
    R::Plus,
    R::Multiply,
    R::Divide,
    R::Modulus,
    R::LogicalAnd,
    R::LogicalOr,
    R::LogicalLt,
    R::LogicalLe,
    R::LogicalGt,
    R::LogicalGe,
    R::LogicalEquals,
    R::LogicalNotEquals,
    R::LogicalNot,
    R::Equals,
    R::IntegerLiteral,
    R::FloatingPointLiteral,
    R::Word,
    R::BracketedWord,
];
const REFERENCE_RULES: &[Rule] = &[
    R::IndexLBracket,
    R::SetDirective,
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::SingleLineCommentStart,
    R::True,
    R::False,
    R::Identifier,
    R::Dot,
    R::LCurly,
    R::RCurly,
    R::ReferenceTerminator,
    R::EmptyIndex,
];
const REFMODIFIER_RULES: &[Rule] = &[
    R::IndexLBracket,
    R::LParen,
    R::SetDirective,
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::True,
    R::False,
    R::Identifier,
    R::Dot,
    R::LCurly,
    R::RCurly,
    R::ReferenceTerminator,
];
const REFMOD2_RULES: &[Rule] = &[
    R::LBracket,
    R::RBracket,
    R::Comma,
    R::DoubleDot,
    R::Colon,
    R::LeftCurley,
    R::RightCurley,
    R::RefMod2RParen,
    R::SetDirective,
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::Whitespace,
    R::StringLiteral,
    R::True,
    R::False,
    R::IntegerLiteral,
    R::FloatingPointLiteral,
    R::Identifier,
    R::Dot,
];
const REFINDEX_RULES: &[Rule] = &[
    R::IndexRBracket,
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::Whitespace,
    R::StringLiteral,
    R::True,
    R::False,
    R::IntegerLiteral,
    R::FloatingPointLiteral,
];
const SL_COMMENT_RULES: &[Rule] = &[
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::SingleLineComment,
    R::SkipAny,
];
const FORMAL_COMMENT_RULES: &[Rule] = &[
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::FormalComment,
    R::SkipAny,
];
const ML_COMMENT_RULES: &[Rule] = &[
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::MultiLineComment,
    R::SkipAny,
];
const TEXTBLOCK_RULES: &[Rule] = &[
    MORE_ALL[0],
    MORE_ALL[1],
    MORE_ALL[2],
    MORE_ALL[3],
    MORE_ALL[4],
    MORE_ALL[5],
    R::Textblock,
    R::MoreAny,
];

fn rules(state: State) -> &'static [Rule] {
    match state {
        State::Default => DEFAULT_RULES,
        State::PreDirective => PRE_DIRECTIVE_RULES,
        State::Directive => DIRECTIVE_RULES,
        State::Reference => REFERENCE_RULES,
        State::RefModifier => REFMODIFIER_RULES,
        State::RefMod2 => REFMOD2_RULES,
        State::RefIndex => REFINDEX_RULES,
        State::InSingleLineComment => SL_COMMENT_RULES,
        State::InFormalComment => FORMAL_COMMENT_RULES,
        State::InMultiLineComment => ML_COMMENT_RULES,
        State::InTextblock => TEXTBLOCK_RULES,
    }
}

#[inline]
fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphabetic()
}

fn char_len(b: &[u8], p: usize) -> usize {
    // length of the UTF-8 character starting at p (p < len)
    let c = b[p];
    let n = if c < 0x80 {
        1
    } else if c >= 0xF0 {
        4
    } else if c >= 0xE0 {
        3
    } else {
        2
    };
    n.min(b.len() - p)
}

fn lit(b: &[u8], p: usize, s: &[u8]) -> Option<usize> {
    if b.len() >= p + s.len() && &b[p..p + s.len()] == s {
        Some(s.len())
    } else {
        None
    }
}

/// `( (" " | "\t")* ("\n" | "\r" | "\r\n") )?` after position p: returns the extra length.
fn opt_ws_newline(b: &[u8], p: usize) -> usize {
    let mut q = p;
    while q < b.len() && (b[q] == b' ' || b[q] == b'\t') {
        q += 1;
    }
    if q < b.len() && b[q] == b'\n' {
        q + 1 - p
    } else if q < b.len() && b[q] == b'\r' {
        if q + 1 < b.len() && b[q + 1] == b'\n' {
            q + 2 - p
        } else {
            q + 1 - p
        }
    } else {
        0
    }
}

fn word_len(b: &[u8], p: usize) -> Option<usize> {
    // (<LETTER> | "_" | "@") (<DIRECTIVE_CHAR>)*
    if p < b.len() && (is_alpha(b[p]) || b[p] == b'_' || b[p] == b'@') {
        let mut q = p + 1;
        while q < b.len() && (b[q].is_ascii_alphanumeric() || b[q] == b'_' || b[q] == b'@') {
            q += 1;
        }
        Some(q - p)
    } else {
        None
    }
}

fn bracketed_word_len(b: &[u8], p: usize) -> Option<usize> {
    // "{" ( <LETTER> | "_") (<DIRECTIVE_CHAR>)* "}"
    if p + 1 < b.len() && b[p] == b'{' && (is_alpha(b[p + 1]) || b[p + 1] == b'_') {
        let mut q = p + 2;
        while q < b.len() && (b[q].is_ascii_alphanumeric() || b[q] == b'_' || b[q] == b'@') {
            q += 1;
        }
        if q < b.len() && b[q] == b'}' {
            Some(q + 1 - p)
        } else {
            None
        }
    } else {
        None
    }
}

fn digits(b: &[u8], p: usize) -> usize {
    let mut q = p;
    while q < b.len() && b[q].is_ascii_digit() {
        q += 1;
    }
    q - p
}

fn exponent(b: &[u8], p: usize) -> usize {
    // ["e","E"] (["+","-"])? (["0"-"9"])+
    if p < b.len() && (b[p] == b'e' || b[p] == b'E') {
        let mut q = p + 1;
        if q < b.len() && (b[q] == b'+' || b[q] == b'-') {
            q += 1;
        }
        let d = digits(b, q);
        if d > 0 { q + d - p } else { 0 }
    } else {
        0
    }
}

fn float_len(b: &[u8], p: usize) -> Option<usize> {
    let mut q = p;
    if q < b.len() && b[q] == b'-' {
        q += 1;
    }
    let mut best: Option<usize> = None;
    let d = digits(b, q);
    if d > 0 {
        // digits "." digits* exp?
        let r = q + d;
        if r < b.len() && b[r] == b'.' {
            let r2 = r + 1 + digits(b, r + 1);
            let e = exponent(b, r2);
            best = Some(r2 + e - p);
        }
        // digits exp
        let e = exponent(b, r);
        if e > 0 {
            let l = r + e - p;
            if best.is_none_or(|x| l > x) {
                best = Some(l);
            }
        }
    } else if q < b.len() && b[q] == b'.' {
        let d2 = digits(b, q + 1);
        if d2 > 0 {
            let r = q + 1 + d2;
            let e = exponent(b, r);
            best = Some(r + e - p);
        }
    }
    best
}

#[allow(clippy::while_let_loop)]
fn string_literal_len(b: &[u8], p: usize) -> Option<usize> {
    if p >= b.len() {
        return None;
    }
    let q = b[p];
    if q != b'"' && q != b'\'' {
        return None;
    }
    // ( ~[q] | q q )* q  -- longest match
    let mut i = p + 1;
    let mut last_end = None;
    loop {
        let j = match b[i..].iter().position(|&c| c == q) {
            Some(off) => i + off,
            None => break,
        };
        last_end = Some(j + 1);
        if j + 1 < b.len() && b[j + 1] == q {
            i = j + 2;
        } else {
            break;
        }
    }
    last_end.map(|e| e - p)
}

/// Length of the match of `rule` at position p (None: no match). For rules whose action
/// backs up, this is the length before the backup (JavaCC compares these lengths).
fn match_rule(rule: Rule, b: &[u8], p: usize) -> Option<usize> {
    let n = b.len();
    let c = if p < n { b[p] } else { return None };
    match rule {
        R::IndexLBracket | R::LBracket => (c == b'[').then_some(1),
        R::IndexRBracket | R::RBracket => (c == b']').then_some(1),
        R::Comma => (c == b',').then_some(1),
        R::DoubleDot => lit(b, p, b".."),
        R::Colon => (c == b':').then_some(1),
        R::LeftCurley | R::LCurly => (c == b'{').then_some(1),
        R::RightCurley | R::RCurly => (c == b'}').then_some(1),
        R::LParen => (c == b'(').then_some(1),
        R::RParen => (c == b')').then(|| 1 + opt_ws_newline(b, p + 1)),
        R::RefMod2RParen => (c == b')').then_some(1),
        R::EscapeDirective => {
            // (<DOUBLE_ESCAPE>)* "\#" (<WORD> | <BRACKETED_WORD>)
            let mut q = p;
            while q < n && b[q] == b'\\' {
                q += 1;
            }
            let k = q - p;
            if k % 2 == 1 && q < n && b[q] == b'#' {
                let w = word_len(b, q + 1).or_else(|| bracketed_word_len(b, q + 1))?;
                Some(q + 1 + w - p)
            } else {
                None
            }
        }
        R::SetDirective => {
            // (" "|"\t")* ("#set" | "#{set}") (" ")* "("
            let mut q = p;
            while q < n && (b[q] == b' ' || b[q] == b'\t') {
                q += 1;
            }
            let l = lit(b, q, b"#set").or_else(|| lit(b, q, b"#{set}"))?;
            q += l;
            while q < n && b[q] == b' ' {
                q += 1;
            }
            if q < n && b[q] == b'(' {
                Some(q + 1 - p)
            } else {
                None
            }
        }
        R::Dollar => {
            let mut q = p;
            while q < n && b[q] == b'\\' {
                q += 1;
            }
            (q < n && b[q] == b'$').then(|| q + 1 - p)
        }
        R::DollarBang => {
            let mut q = p;
            while q < n && b[q] == b'\\' {
                q += 1;
            }
            if !(q < n && b[q] == b'$') {
                return None;
            }
            q += 1;
            while q < n && b[q] == b'\\' {
                q += 1;
            }
            (q < n && b[q] == b'!').then(|| q + 1 - p)
        }
        R::TextblockStart => lit(b, p, b"#[["),
        R::FormalCommentStart => {
            if lit(b, p, b"#**").is_some() && p + 3 < n && b[p + 3] != b'#' {
                Some(3 + char_len(b, p + 3))
            } else {
                None
            }
        }
        R::MultiCommentStart => lit(b, p, b"#*"),
        R::Hash => (c == b'#').then_some(1),
        R::SingleLineCommentStart => lit(b, p, b"##"),
        R::DoubleEscape => lit(b, p, b"\\\\"),
        R::Escape => (c == b'\\').then_some(1),
        R::Text => {
            let mut q = p;
            while q < n && b[q] != b'$' && b[q] != b'#' && b[q] != b'\\' {
                q += 1;
            }
            (q > p).then_some(q - p)
        }
        R::SingleLineComment | R::Newline => {
            if c == b'\n' {
                Some(1)
            } else if c == b'\r' {
                Some(if p + 1 < n && b[p + 1] == b'\n' { 2 } else { 1 })
            } else {
                None
            }
        }
        R::FormalComment | R::MultiLineComment => lit(b, p, b"*#"),
        R::Textblock => lit(b, p, b"]]#"),
        R::SkipAny | R::MoreAny | R::ReferenceTerminator | R::DirectiveTerminator => {
            Some(char_len(b, p))
        }
        R::Whitespace => {
            let mut q = p;
            while q < n && matches!(b[q], b' ' | b'\t' | b'\n' | b'\r') {
                q += 1;
            }
            (q > p).then_some(q - p)
        }
        R::StringLiteral => string_literal_len(b, p),
        R::True => lit(b, p, b"true"),
        R::False => lit(b, p, b"false"),
        R::Minus => (c == b'-').then_some(1),
        R::Plus => (c == b'+').then_some(1),
        R::Multiply => (c == b'*').then_some(1),
        R::Divide => (c == b'/').then_some(1),
        R::Modulus => (c == b'%').then_some(1),
        R::LogicalAnd => lit(b, p, b"&&").or_else(|| lit(b, p, b"and")),
        R::LogicalOr => lit(b, p, b"||").or_else(|| lit(b, p, b"or")),
        R::LogicalLt => lit(b, p, b"<").or_else(|| lit(b, p, b"lt")),
        R::LogicalLe => lit(b, p, b"<=").or_else(|| lit(b, p, b"le")),
        R::LogicalGt => lit(b, p, b">").or_else(|| lit(b, p, b"gt")),
        R::LogicalGe => lit(b, p, b">=").or_else(|| lit(b, p, b"ge")),
        R::LogicalEquals => lit(b, p, b"==").or_else(|| lit(b, p, b"eq")),
        R::LogicalNotEquals => lit(b, p, b"!=").or_else(|| lit(b, p, b"ne")),
        R::LogicalNot => lit(b, p, b"!").or_else(|| lit(b, p, b"not")),
        R::Equals => (c == b'=').then_some(1),
        R::End => {
            let l = lit(b, p, b"end").or_else(|| lit(b, p, b"{end}"))?;
            Some(l + opt_ws_newline(b, p + l))
        }
        R::ElseDirective => {
            let l = lit(b, p, b"else").or_else(|| lit(b, p, b"{else}"))?;
            Some(l + opt_ws_newline(b, p + l))
        }
        R::IfDirective => lit(b, p, b"if").or_else(|| lit(b, p, b"{if}")),
        R::ElseifDirective => lit(b, p, b"elseif").or_else(|| lit(b, p, b"{elseif}")),
        R::IntegerLiteral => {
            // ("-")? (<DIGIT>)+ ("..")?
            let mut q = p;
            if b[q] == b'-' {
                q += 1;
            }
            let d = digits(b, q);
            if d == 0 {
                return None;
            }
            q += d;
            if lit(b, q, b"..").is_some() {
                q += 2;
            }
            Some(q - p)
        }
        R::FloatingPointLiteral => float_len(b, p),
        R::Word => word_len(b, p),
        R::BracketedWord => bracketed_word_len(b, p),
        R::Identifier => {
            if is_alpha(c) || c == b'_' {
                let mut q = p + 1;
                while q < n && (b[q].is_ascii_alphanumeric() || b[q] == b'-' || b[q] == b'_') {
                    q += 1;
                }
                Some(q - p)
            } else {
                None
            }
        }
        R::Dot => (c == b'.' && p + 1 < n && is_alpha(b[p + 1])).then_some(2),
        R::EmptyIndex => lit(b, p, b"$[")
            .or_else(|| lit(b, p, b"$!["))
            .or_else(|| lit(b, p, b"$\\!["))
            .or_else(|| lit(b, p, b"$.")),
    }
}

#[derive(Clone, Copy)]
struct Saved {
    lparen: i32,
    rparen: i32,
    state: State,
}

/// Maximum depth of the lexical state stack (each unclosed `#`, `$`, `[` ... pushes).
const MAX_STATE_DEPTH: usize = 100_000;

pub(crate) struct Lexer<'a> {
    pub src: &'a str,
    b: &'a [u8],
    pub pos: usize,
    pub state: State,
    stack: Vec<Saved>,
    lparen: i32,
    rparen: i32,
    pub in_directive: bool,
    in_comment: bool,
    pub in_set: bool,
    in_reference: bool,
}

/// A lexical error: the byte offset where lexing failed and a message.
pub(crate) struct LexError {
    pub offset: usize,
    pub message: String,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Lexer<'a> {
        Lexer {
            src,
            b: src.as_bytes(),
            pos: 0,
            state: State::Default,
            stack: Vec::new(),
            lparen: 0,
            rparen: 0,
            in_directive: false,
            in_comment: false,
            in_set: false,
            in_reference: false,
        }
    }

    pub(crate) fn switch_to(&mut self, s: State) {
        self.state = s;
    }

    fn push(&mut self) {
        if self.stack.len() < MAX_STATE_DEPTH {
            self.stack.push(Saved {
                lparen: self.lparen,
                rparen: self.rparen,
                state: self.state,
            });
        }
        self.lparen = 0;
    }

    pub(crate) fn pop(&mut self) -> bool {
        match self.stack.pop() {
            Some(s) => {
                self.lparen = s.lparen;
                self.rparen = s.rparen;
                self.state = s.state;
                true
            }
            None => {
                self.lparen = 0;
                self.state = State::Default;
                false
            }
        }
    }

    fn rparen_handler(&mut self) {
        let mut closed = self.in_comment;
        while !closed {
            if self.lparen > 0 {
                if self.lparen == self.rparen + 1 {
                    self.pop();
                } else {
                    self.rparen += 1;
                }
                closed = true;
            } else if !self.pop() {
                break;
            }
        }
    }

    /// Velocity's Parser.isLeftParenthesis(): whitespace, then '(' ?
    pub(crate) fn is_left_parenthesis(&self) -> bool {
        for &c in &self.b[self.pos..] {
            if c == b'(' {
                return true;
            }
            if c != b' ' && c != b'\n' && c != b'\r' && c != b'\t' {
                return false;
            }
        }
        false
    }

    /// getSpecialText for one special token image.
    fn special_text(img: &[u8], out: &mut String) {
        let is = img.len();
        let mut i = 0;
        while i < is {
            let c = img[i];
            if c == b'#' || c == b'$' {
                out.push(c as char);
            }
            if c == b'\\' {
                let mut ok = true;
                let mut term = false;
                let mut j = i;
                while ok && j < is {
                    let cc = img[j];
                    if cc == b'\\' {
                        // keep going
                    } else if cc == b'$' {
                        term = true;
                        ok = false;
                    } else {
                        ok = false;
                    }
                    j += 1;
                }
                if term {
                    // all bytes are ASCII here
                    out.push_str(std::str::from_utf8(&img[i..j]).unwrap_or(""));
                    i = j;
                }
            }
            i += 1;
        }
    }

    /// Returns the next token (an `Eof` token at the end).
    pub(crate) fn next_token(&mut self) -> Result<Token, LexError> {
        let mut special: Option<String> = None;
        'token: loop {
            // EOFLoop: the beginning of a token
            let mut image_start = self.pos;
            if self.pos >= self.b.len() {
                return Ok(Token {
                    kind: Kind::Eof,
                    start: self.pos,
                    end: self.pos,
                    image_dot: false,
                    special: special.map(String::into_boxed_str),
                });
            }
            loop {
                // MoreLoop
                let p = self.pos;
                if p >= self.b.len() {
                    let pending: String = self.src[image_start..p].chars().take(20).collect();
                    return Err(LexError {
                        offset: image_start,
                        message: format!("Lexical error: the template ends inside {:?}", pending),
                    });
                }
                let mut best: Option<(Rule, usize)> = None;
                for &r in rules(self.state) {
                    if let Some(l) = match_rule(r, self.b, p)
                        && best.is_none_or(|(_, bl)| l > bl)
                    {
                        best = Some((r, l));
                    }
                }
                let Some((rule, len)) = best else {
                    let ch = self.src[p..].chars().next().unwrap_or('?');
                    return Err(LexError {
                        offset: p,
                        message: format!("Lexical error: encountered {:?}", ch),
                    });
                };
                let end = p + len;
                self.pos = end;
                // --- MORE rules
                match rule {
                    R::Dollar | R::DollarBang => {
                        if !self.in_comment {
                            if self.state == State::Reference {
                                self.in_reference = false;
                                self.pop();
                            }
                            self.in_reference = true;
                            self.push();
                            self.switch_to(State::Reference);
                        }
                        continue;
                    }
                    R::TextblockStart => {
                        if !self.in_comment {
                            self.in_comment = true;
                            self.push();
                            self.switch_to(State::InTextblock);
                        }
                        continue;
                    }
                    R::FormalCommentStart => {
                        if !self.in_comment {
                            self.pos = p + 3; // backup(1)
                            self.in_comment = true;
                            self.push();
                            self.switch_to(State::InFormalComment);
                        }
                        continue;
                    }
                    R::MultiCommentStart => {
                        if !self.in_comment {
                            self.in_comment = true;
                            self.push();
                            self.switch_to(State::InMultiLineComment);
                        }
                        continue;
                    }
                    R::Hash => {
                        if !self.in_comment {
                            if self.state == State::Reference || self.state == State::RefModifier {
                                self.in_reference = false;
                                self.pop();
                            }
                            self.in_directive = true;
                            self.push();
                            self.switch_to(State::PreDirective);
                        }
                        continue;
                    }
                    R::MoreAny => continue,
                    R::SkipAny => {
                        continue 'token;
                    }
                    R::ReferenceTerminator | R::DirectiveTerminator => {
                        // special token: image includes the terminator char, then backup(1)
                        let s = special.get_or_insert_with(String::new);
                        Self::special_text(&self.b[image_start..end], s);
                        self.pos = p;
                        if rule == R::ReferenceTerminator {
                            self.in_reference = false;
                        } else {
                            self.in_directive = false;
                        }
                        self.pop();
                        image_start = self.pos;
                        let _ = image_start;
                        continue 'token;
                    }
                    _ => {}
                }
                // --- TOKEN rules
                let mut tok = Token {
                    kind: Kind::Eof,
                    start: image_start,
                    end,
                    image_dot: false,
                    special: special.take().map(String::into_boxed_str),
                };
                tok.kind = match rule {
                    R::IndexLBracket => {
                        self.push();
                        self.switch_to(State::RefIndex);
                        Kind::IndexLBracket
                    }
                    R::IndexRBracket => {
                        self.pop();
                        Kind::IndexRBracket
                    }
                    R::LBracket => Kind::LBracket,
                    R::RBracket => Kind::RBracket,
                    R::Comma => Kind::Comma,
                    R::DoubleDot => Kind::DoubleDot,
                    R::Colon => Kind::Colon,
                    R::LeftCurley => Kind::LeftCurley,
                    R::RightCurley => Kind::RightCurley,
                    R::LParen => {
                        if !self.in_comment {
                            self.lparen += 1;
                        }
                        if self.state == State::RefModifier {
                            self.switch_to(State::RefMod2);
                        }
                        Kind::LParen
                    }
                    R::RParen => {
                        self.rparen_handler();
                        Kind::RParen
                    }
                    R::RefMod2RParen => {
                        self.switch_to(State::Reference);
                        Kind::RefMod2RParen
                    }
                    R::EscapeDirective => Kind::EscapeDirective,
                    R::SetDirective => {
                        if !self.in_comment {
                            self.in_directive = true;
                            self.push();
                            self.in_set = true;
                            self.switch_to(State::Directive);
                        }
                        if !self.in_comment {
                            self.lparen += 1;
                            if self.state == State::RefModifier {
                                self.switch_to(State::RefMod2);
                            }
                        }
                        Kind::SetDirective
                    }
                    R::SingleLineCommentStart => {
                        if !self.in_comment {
                            if self.state == State::Reference {
                                self.in_reference = false;
                                self.pop();
                            }
                            self.in_comment = true;
                            self.push();
                            self.switch_to(State::InSingleLineComment);
                        }
                        Kind::SingleLineCommentStart
                    }
                    R::DoubleEscape => Kind::DoubleEscape,
                    R::Escape => Kind::Escape,
                    R::Text => Kind::Text,
                    R::SingleLineComment
                    | R::FormalComment
                    | R::MultiLineComment
                    | R::Textblock => {
                        self.in_comment = false;
                        self.pop();
                        match rule {
                            R::SingleLineComment => Kind::SingleLineComment,
                            R::FormalComment => Kind::FormalComment,
                            R::MultiLineComment => Kind::MultiLineComment,
                            _ => Kind::Textblock,
                        }
                    }
                    R::Whitespace => Kind::Whitespace,
                    R::StringLiteral => {
                        if self.state == State::Directive && !self.in_set && self.lparen == 0 {
                            self.pop();
                        }
                        Kind::StringLiteral
                    }
                    R::True => Kind::True,
                    R::False => Kind::False,
                    R::Newline => {
                        self.pop();
                        self.in_set = false;
                        self.in_directive = false;
                        Kind::Newline
                    }
                    R::Minus => Kind::Minus,
                    R::Plus => Kind::Plus,
                    R::Multiply => Kind::Multiply,
                    R::Divide => Kind::Divide,
                    R::Modulus => Kind::Modulus,
                    R::LogicalAnd => Kind::LogicalAnd,
                    R::LogicalOr => Kind::LogicalOr,
                    R::LogicalLt => Kind::LogicalLt,
                    R::LogicalLe => Kind::LogicalLe,
                    R::LogicalGt => Kind::LogicalGt,
                    R::LogicalGe => Kind::LogicalGe,
                    R::LogicalEquals => Kind::LogicalEquals,
                    R::LogicalNotEquals => Kind::LogicalNotEquals,
                    R::LogicalNot => Kind::LogicalNot,
                    R::Equals => Kind::Equals,
                    R::End => {
                        self.in_directive = false;
                        self.pop();
                        Kind::End
                    }
                    R::IfDirective => {
                        self.switch_to(State::Directive);
                        Kind::IfDirective
                    }
                    R::ElseifDirective => {
                        self.switch_to(State::Directive);
                        Kind::ElseifDirective
                    }
                    R::ElseDirective => {
                        self.in_directive = false;
                        self.pop();
                        Kind::ElseDirective
                    }
                    R::IntegerLiteral => {
                        if self.b[p..end].ends_with(b"..") {
                            self.pos = end - 2;
                            tok.end = end - 2;
                        }
                        if self.lparen == 0
                            && !self.in_set
                            && self.state != State::RefMod2
                            && self.state != State::RefIndex
                        {
                            self.pop();
                        }
                        Kind::IntegerLiteral
                    }
                    R::FloatingPointLiteral => {
                        if self.lparen == 0 && !self.in_set && self.state != State::RefMod2 {
                            self.pop();
                        }
                        Kind::FloatingPointLiteral
                    }
                    R::Word => Kind::Word,
                    R::BracketedWord => Kind::BracketedWord,
                    R::Identifier => Kind::Identifier,
                    R::Dot => {
                        self.pos = end - 1;
                        tok.end = end - 1;
                        tok.image_dot = true;
                        self.switch_to(State::RefModifier);
                        Kind::Dot
                    }
                    R::LCurly => Kind::LCurly,
                    R::RCurly => {
                        self.pop();
                        Kind::RCurly
                    }
                    R::EmptyIndex => Kind::EmptyIndex,
                    // handled above
                    R::Dollar
                    | R::DollarBang
                    | R::TextblockStart
                    | R::FormalCommentStart
                    | R::MultiCommentStart
                    | R::Hash
                    | R::MoreAny
                    | R::SkipAny
                    | R::ReferenceTerminator
                    | R::DirectiveTerminator => unreachable!(),
                };
                return Ok(tok);
            }
        }
    }
}
