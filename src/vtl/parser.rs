//! The parser: a port of the productions of Velocity 1.7's `Parser.jjt`, including its
//! LOOKAHEAD decisions (which decide when tokens are lexed, and so which lexical state they
//! are lexed in) and the parser actions that switch lexical states.

use std::collections::HashMap;
use std::sync::Arc;

use super::ast::*;
use super::error::{Error, LineIndex};
use super::lexer::{Kind, LexError, Lexer, Token};

/// Maximum nesting depth of directives, parentheses, references in arguments and
/// interpolated strings.
pub const MAX_NESTING: u32 = 100;

/// Names of the directives Velocity 1.7 registers (directive.properties).
const DIRECTIVES: &[&str] = &[
    "foreach", "include", "parse", "macro", "literal", "evaluate", "break", "define", "stop",
];

fn is_directive(name: &str) -> bool {
    DIRECTIVES.contains(&name)
}

/// Variable names used by a template, interned to slots.
#[derive(Debug, Default, Clone)]
pub struct Slots {
    pub names: Vec<Arc<str>>,
    /// number of constant string literals
    pub lits: u32,
    map: HashMap<Arc<str>, u32>,
}

impl Slots {
    pub fn slot(&mut self, name: &str) -> u32 {
        if let Some(&s) = self.map.get(name) {
            return s;
        }
        let s = self.names.len() as u32;
        let a: Arc<str> = Arc::from(name);
        self.names.push(a.clone());
        self.map.insert(a, s);
        s
    }

    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.map.get(name).copied()
    }
}

/// Where a sub-template (an interpolated string literal) sits in the outer template.
#[derive(Clone, Copy)]
struct Base {
    line: u32,
    col: u32,
}

enum Sc {
    Ok,
    Fail,
    Accept,
}

macro_rules! seq {
    ($e:expr) => {
        match $e? {
            Sc::Ok => {}
            other => return Ok(other),
        }
    };
}

macro_rules! opt {
    ($self:ident, $i:ident, $e:expr) => {{
        let save = *$i;
        match $e? {
            Sc::Fail => *$i = save,
            Sc::Accept => return Ok(Sc::Accept),
            Sc::Ok => {}
        }
    }};
}

pub(crate) struct Parser<'a, 's> {
    file: &'a str,
    src: &'a str,
    lines: LineIndex,
    lx: Lexer<'a>,
    toks: Vec<Token>,
    pos: usize,
    depth: u32,
    slots: &'s mut Slots,
    base: Option<Base>,
    /// First-token images that ASTReference.getRoot() rewrote (escapes and prefixes
    /// stripped); an enclosing reference's literal() sees the rewritten text.
    modified: HashMap<usize, String>,
}

type PResult<T> = Result<T, Error>;

/// A lookahead scan over tokens from an index with a limit.
type ScanFn<P> = fn(&mut P, &mut usize, usize) -> PResult<Sc>;

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Eof => "<EOF>",
        Kind::IndexLBracket | Kind::LBracket => "\"[\"",
        Kind::IndexRBracket | Kind::RBracket => "\"]\"",
        Kind::Comma => "\",\"",
        Kind::DoubleDot => "\"..\"",
        Kind::Colon => "\":\"",
        Kind::LeftCurley | Kind::LCurly => "\"{\"",
        Kind::RightCurley | Kind::RCurly => "\"}\"",
        Kind::LParen => "\"(\"",
        Kind::RParen | Kind::RefMod2RParen => "\")\"",
        Kind::EscapeDirective => "escaped directive",
        Kind::SetDirective => "#set",
        Kind::SingleLineCommentStart => "\"##\"",
        Kind::DoubleEscape | Kind::Escape => "\"\\\"",
        Kind::Text => "text",
        Kind::SingleLineComment => "newline",
        Kind::FormalComment | Kind::MultiLineComment => "\"*#\"",
        Kind::Textblock => "\"]]#\"",
        Kind::Whitespace => "whitespace",
        Kind::StringLiteral => "string literal",
        Kind::True => "true",
        Kind::False => "false",
        Kind::Newline => "newline",
        Kind::Minus => "\"-\"",
        Kind::Plus => "\"+\"",
        Kind::Multiply => "\"*\"",
        Kind::Divide => "\"/\"",
        Kind::Modulus => "\"%\"",
        Kind::LogicalAnd => "\"&&\"",
        Kind::LogicalOr => "\"||\"",
        Kind::LogicalLt => "\"<\"",
        Kind::LogicalLe => "\"<=\"",
        Kind::LogicalGt => "\">\"",
        Kind::LogicalGe => "\">=\"",
        Kind::LogicalEquals => "\"==\"",
        Kind::LogicalNotEquals => "\"!=\"",
        Kind::LogicalNot => "\"!\"",
        Kind::Equals => "\"=\"",
        Kind::End => "#end",
        Kind::IfDirective => "#if",
        Kind::ElseifDirective => "#elseif",
        Kind::ElseDirective => "#else",
        Kind::IntegerLiteral => "integer",
        Kind::FloatingPointLiteral => "number",
        Kind::Word | Kind::BracketedWord => "word",
        Kind::Identifier => "identifier",
        Kind::Dot => "\".\"",
        Kind::EmptyIndex => "text",
    }
}

fn is_statement_start(k: Kind) -> bool {
    matches!(
        k,
        Kind::IfDirective
            | Kind::Identifier
            | Kind::LCurly
            | Kind::SingleLineCommentStart
            | Kind::MultiLineComment
            | Kind::FormalComment
            | Kind::Textblock
            | Kind::SetDirective
            | Kind::EscapeDirective
            | Kind::DoubleEscape
            | Kind::Word
            | Kind::BracketedWord
            | Kind::Text
            | Kind::Dot
            | Kind::RParen
            | Kind::LParen
            | Kind::IntegerLiteral
            | Kind::FloatingPointLiteral
            | Kind::StringLiteral
            | Kind::Escape
            | Kind::RCurly
            | Kind::EmptyIndex
    )
}

fn is_parameter_start(k: Kind) -> bool {
    matches!(
        k,
        Kind::Whitespace
            | Kind::StringLiteral
            | Kind::IntegerLiteral
            | Kind::LBracket
            | Kind::LeftCurley
            | Kind::True
            | Kind::False
            | Kind::Identifier
            | Kind::LCurly
            | Kind::FloatingPointLiteral
    )
}

/// Parses a whole template into a block.
pub(crate) fn parse_template(file: &str, src: &str, slots: &mut Slots) -> PResult<Block> {
    let mut p = Parser::new(file, src, slots, None, 0);
    p.process()
}

impl<'a, 's> Parser<'a, 's> {
    fn new(
        file: &'a str,
        src: &'a str,
        slots: &'s mut Slots,
        base: Option<Base>,
        depth: u32,
    ) -> Parser<'a, 's> {
        Parser {
            file,
            src,
            lines: LineIndex::new(src),
            lx: Lexer::new(src),
            toks: Vec::new(),
            pos: 0,
            depth,
            slots,
            base,
            modified: HashMap::new(),
        }
    }

    /// NodeUtils.tokenLiteral over tokens `first..=last`, with rewritten images.
    fn literal_range(&self, first: usize, last: usize) -> String {
        let mut s = String::new();
        for i in first..=last {
            if let Some(sp) = &self.toks[i].special {
                s.push_str(sp);
            }
            match self.modified.get(&i) {
                Some(m) => s.push_str(m),
                None => s.push_str(self.image(i)),
            }
        }
        s
    }

    // ------------------------------------------------------------------ positions, errors

    fn span_at(&self, offset: usize) -> Span {
        let (l, c) = self.lines.pos(self.src, offset);
        match self.base {
            None => Span { line: l, col: c },
            Some(b) => {
                if l == 1 {
                    Span {
                        line: b.line,
                        col: b.col + c,
                    }
                } else {
                    Span {
                        line: b.line + l - 1,
                        col: c,
                    }
                }
            }
        }
    }

    fn err_at(&self, offset: usize, msg: impl Into<String>) -> Error {
        let s = self.span_at(offset);
        Error::new(self.file, s.line, s.col, msg)
    }

    fn lex_err(&self, e: LexError) -> Error {
        self.err_at(e.offset, e.message)
    }

    fn tok_span(&self, i: usize) -> Span {
        self.span_at(self.toks[i].start)
    }

    fn image(&self, i: usize) -> &'a str {
        let t = &self.toks[i];
        if t.image_dot {
            "."
        } else {
            &self.src[t.start..t.end]
        }
    }

    // ------------------------------------------------------------------ token stream

    fn fetch_to(&mut self, idx: usize) -> PResult<()> {
        while self.toks.len() <= idx {
            if let Some(last) = self.toks.last()
                && last.kind == Kind::Eof
            {
                let t = last.clone();
                self.toks.push(t);
                continue;
            }
            let t = self.lx.next_token().map_err(|e| self.lex_err(e))?;
            self.toks.push(t);
        }
        Ok(())
    }

    /// Kind of the token `k` places ahead of the next one (fetching as JavaCC does).
    fn kind_at(&mut self, idx: usize) -> PResult<Kind> {
        self.fetch_to(idx)?;
        Ok(self.toks[idx].kind)
    }

    fn kind(&mut self) -> PResult<Kind> {
        self.kind_at(self.pos)
    }

    fn unexpected(&mut self, expected: &str) -> Error {
        let _ = self.fetch_to(self.pos);
        let i = self.pos.min(self.toks.len().saturating_sub(1));
        if self.toks.is_empty() {
            return self.err_at(0, format!("expected {}", expected));
        }
        let t = &self.toks[i];
        let found = if t.kind == Kind::Eof {
            "end of template".to_string()
        } else {
            let img = self.image(i);
            let short: String = img.chars().take(20).collect();
            format!("{:?}", short)
        };
        self.err_at(
            t.start,
            format!("syntax error: found {}, expected {}", found, expected),
        )
    }

    fn consume(&mut self, k: Kind) -> PResult<usize> {
        if self.kind()? == k {
            self.pos += 1;
            Ok(self.pos - 1)
        } else {
            Err(self.unexpected(kind_name(k)))
        }
    }

    fn opt(&mut self, k: Kind) -> PResult<bool> {
        if self.kind()? == k {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn enter(&mut self, offset: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.err_at(
                offset,
                format!("nesting deeper than {} levels", MAX_NESTING),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn cur_offset(&mut self) -> usize {
        let _ = self.fetch_to(self.pos);
        self.toks
            .get(self.pos)
            .map(|t| t.start)
            .unwrap_or(self.src.len())
    }

    // ------------------------------------------------------------------ lookahead scanning

    fn st(&mut self, i: &mut usize, lim: usize, k: Kind) -> PResult<Sc> {
        self.fetch_to(*i)?;
        if self.toks[*i].kind != k {
            return Ok(Sc::Fail);
        }
        *i += 1;
        if *i >= lim {
            Ok(Sc::Accept)
        } else {
            Ok(Sc::Ok)
        }
    }

    fn st_any(&mut self, i: &mut usize, lim: usize, ks: &[Kind]) -> PResult<Sc> {
        for &k in ks {
            let save = *i;
            match self.st(i, lim, k)? {
                Sc::Fail => *i = save,
                other => return Ok(other),
            }
        }
        Ok(Sc::Fail)
    }

    /// Tries alternatives in order (JavaCC phase-3 choice).
    fn alt(&mut self, i: &mut usize, lim: usize, alts: &[ScanFn<Self>]) -> PResult<Sc> {
        let save = *i;
        for f in alts {
            match f(self, i, lim)? {
                Sc::Fail => *i = save,
                other => return Ok(other),
            }
        }
        Ok(Sc::Fail)
    }

    fn scan_reference(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        let save = *i;
        match self.st(i, lim, Kind::Identifier)? {
            Sc::Accept => return Ok(Sc::Accept),
            Sc::Ok => return self.scan_reference_tail(i, lim, false),
            Sc::Fail => *i = save,
        }
        seq!(self.st(i, lim, Kind::LCurly));
        seq!(self.st(i, lim, Kind::Identifier));
        self.scan_reference_tail(i, lim, true)
    }

    fn scan_reference_tail(&mut self, i: &mut usize, lim: usize, formal: bool) -> PResult<Sc> {
        loop {
            let save = *i;
            match self.scan_index(i, lim)? {
                Sc::Fail => {
                    *i = save;
                    break;
                }
                Sc::Accept => return Ok(Sc::Accept),
                Sc::Ok => {}
            }
        }
        loop {
            let save = *i;
            match self.scan_dot_part(i, lim)? {
                Sc::Fail => {
                    *i = save;
                    break;
                }
                Sc::Accept => return Ok(Sc::Accept),
                Sc::Ok => {}
            }
        }
        if formal {
            seq!(self.st(i, lim, Kind::RCurly));
        }
        Ok(Sc::Ok)
    }

    fn scan_dot_part(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        seq!(self.st(i, lim, Kind::Dot));
        seq!(self.alt(i, lim, &[Self::scan_method, Self::scan_identifier]));
        loop {
            let save = *i;
            match self.scan_index(i, lim)? {
                Sc::Fail => {
                    *i = save;
                    break;
                }
                Sc::Accept => return Ok(Sc::Accept),
                Sc::Ok => {}
            }
        }
        Ok(Sc::Ok)
    }

    fn scan_identifier(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        self.st(i, lim, Kind::Identifier)
    }

    fn scan_index(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        seq!(self.st(i, lim, Kind::IndexLBracket));
        opt!(self, i, self.st(i, lim, Kind::Whitespace));
        seq!(self.alt(
            i,
            lim,
            &[
                |p, i, l| p.st(i, l, Kind::StringLiteral),
                |p, i, l| p.st(i, l, Kind::IntegerLiteral),
                |p, i, l| p.st(i, l, Kind::True),
                |p, i, l| p.st(i, l, Kind::False),
                Self::scan_reference,
            ],
        ));
        opt!(self, i, self.st(i, lim, Kind::Whitespace));
        self.st(i, lim, Kind::IndexRBracket)
    }

    fn scan_method(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        seq!(self.st(i, lim, Kind::Identifier));
        seq!(self.st(i, lim, Kind::LParen));
        {
            let save = *i;
            match self.scan_param_list(i, lim)? {
                Sc::Fail => *i = save,
                Sc::Accept => return Ok(Sc::Accept),
                Sc::Ok => {}
            }
        }
        self.st(i, lim, Kind::RefMod2RParen)
    }

    fn scan_param_list(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        seq!(self.scan_parameter(i, lim));
        loop {
            let save = *i;
            let r = (|| -> PResult<Sc> {
                seq!(self.st(i, lim, Kind::Comma));
                self.scan_parameter(i, lim)
            })()?;
            match r {
                Sc::Fail => {
                    *i = save;
                    break;
                }
                Sc::Accept => return Ok(Sc::Accept),
                Sc::Ok => {}
            }
        }
        Ok(Sc::Ok)
    }

    fn scan_parameter(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        opt!(self, i, self.st(i, lim, Kind::Whitespace));
        seq!(self.alt(
            i,
            lim,
            &[
                |p, i, l| p.st(i, l, Kind::StringLiteral),
                |p, i, l| p.st(i, l, Kind::IntegerLiteral),
                Self::scan_integer_range,
                Self::scan_map,
                Self::scan_object_array,
                |p, i, l| p.st(i, l, Kind::True),
                |p, i, l| p.st(i, l, Kind::False),
                Self::scan_reference,
                |p, i, l| p.st(i, l, Kind::FloatingPointLiteral),
            ],
        ));
        opt!(self, i, self.st(i, lim, Kind::Whitespace));
        Ok(Sc::Ok)
    }

    fn scan_ref_or_int(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        self.alt(
            i,
            lim,
            &[Self::scan_reference, |p, i, l| {
                p.st(i, l, Kind::IntegerLiteral)
            }],
        )
    }

    /// The explicit lookahead before IntegerRange:
    /// `<LBRACKET> [<WHITESPACE>] (Reference() | IntegerLiteral()) [<WHITESPACE>] <DOUBLEDOT>`
    fn scan_range_lookahead(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        seq!(self.st(i, lim, Kind::LBracket));
        opt!(self, i, self.st(i, lim, Kind::Whitespace));
        seq!(self.scan_ref_or_int(i, lim));
        opt!(self, i, self.st(i, lim, Kind::Whitespace));
        self.st(i, lim, Kind::DoubleDot)
    }

    fn scan_integer_range(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        seq!(self.scan_range_lookahead(i, lim));
        opt!(self, i, self.st(i, lim, Kind::Whitespace));
        seq!(self.scan_ref_or_int(i, lim));
        opt!(self, i, self.st(i, lim, Kind::Whitespace));
        self.st(i, lim, Kind::RBracket)
    }

    fn scan_map(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        seq!(self.st(i, lim, Kind::LeftCurley));
        {
            let save = *i;
            let r = self.scan_map_entries(i, lim)?;
            match r {
                Sc::Accept => return Ok(Sc::Accept),
                Sc::Ok => {}
                Sc::Fail => {
                    *i = save;
                    opt!(self, i, self.st(i, lim, Kind::Whitespace));
                }
            }
        }
        self.st_any(i, lim, &[Kind::RightCurley, Kind::RCurly])
    }

    fn scan_map_entries(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        seq!(self.scan_parameter(i, lim));
        seq!(self.st(i, lim, Kind::Colon));
        seq!(self.scan_parameter(i, lim));
        loop {
            let save = *i;
            let r = (|| -> PResult<Sc> {
                seq!(self.st(i, lim, Kind::Comma));
                seq!(self.scan_parameter(i, lim));
                seq!(self.st(i, lim, Kind::Colon));
                self.scan_parameter(i, lim)
            })()?;
            match r {
                Sc::Fail => {
                    *i = save;
                    break;
                }
                Sc::Accept => return Ok(Sc::Accept),
                Sc::Ok => {}
            }
        }
        Ok(Sc::Ok)
    }

    fn scan_object_array(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        seq!(self.st(i, lim, Kind::LBracket));
        {
            let save = *i;
            match self.scan_param_list(i, lim)? {
                Sc::Fail => *i = save,
                Sc::Accept => return Ok(Sc::Accept),
                Sc::Ok => {}
            }
        }
        self.st(i, lim, Kind::RBracket)
    }

    fn scan_directive_arg(&mut self, i: &mut usize, lim: usize) -> PResult<Sc> {
        self.alt(
            i,
            lim,
            &[
                Self::scan_reference,
                |p, i, l| p.st(i, l, Kind::Word),
                |p, i, l| p.st(i, l, Kind::StringLiteral),
                |p, i, l| p.st(i, l, Kind::IntegerLiteral),
                Self::scan_integer_range,
                |p, i, l| p.st(i, l, Kind::FloatingPointLiteral),
                Self::scan_map,
                Self::scan_object_array,
                |p, i, l| p.st(i, l, Kind::True),
                |p, i, l| p.st(i, l, Kind::False),
            ],
        )
    }

    /// `jj_2_x(la)`: runs a scan from the next token with a lookahead limit.
    fn lookahead(
        &mut self,
        la: usize,
        f: impl FnOnce(&mut Self, &mut usize, usize) -> PResult<Sc>,
    ) -> PResult<bool> {
        let mut i = self.pos;
        let lim = if la == usize::MAX {
            usize::MAX
        } else {
            self.pos + la
        };
        Ok(!matches!(f(self, &mut i, lim)?, Sc::Fail))
    }

    // ------------------------------------------------------------------ productions

    fn process(&mut self) -> PResult<Block> {
        let mut block = Vec::new();
        while is_statement_start(self.kind()?) {
            self.statement(&mut block)?;
        }
        if self.kind()? != Kind::Eof {
            return Err(self.unexpected("text, a reference or a directive"));
        }
        Ok(block)
    }

    fn block(&mut self) -> PResult<Block> {
        let mut block = Vec::new();
        while is_statement_start(self.kind()?) {
            self.statement(&mut block)?;
        }
        Ok(block)
    }

    fn push_text(block: &mut Block, s: &str) {
        if s.is_empty() {
            return;
        }
        if let Some(Node::Text(prev)) = block.last_mut() {
            let mut t = String::with_capacity(prev.len() + s.len());
            t.push_str(prev);
            t.push_str(s);
            *prev = Arc::from(t);
        } else {
            block.push(Node::Text(Arc::from(s)));
        }
    }

    fn statement(&mut self, block: &mut Block) -> PResult<()> {
        let k = self.kind()?;
        if k == Kind::IfDirective {
            let n = self.if_statement()?;
            block.push(n);
            return Ok(());
        }
        if self.lookahead(2, Self::scan_reference)? {
            let r = self.reference()?;
            block.push(Node::Ref(Box::new(r)));
            return Ok(());
        }
        match k {
            Kind::SingleLineCommentStart | Kind::MultiLineComment | Kind::FormalComment => {
                let i = self.pos;
                self.pos += 1;
                if k == Kind::SingleLineCommentStart {
                    self.opt(Kind::SingleLineComment)?;
                }
                let img = self.image(i);
                let cut = match (img.find("##"), img.find("#*")) {
                    (None, None) => 0,
                    (Some(a), None) => a,
                    (None, Some(b)) => b,
                    (Some(a), Some(_)) => a,
                };
                Self::push_text(block, &img[..cut]);
            }
            Kind::Textblock => {
                let i = self.pos;
                self.pos += 1;
                let img = self.image(i);
                let inner = if img.len() >= 6 {
                    img.get(3..img.len() - 3).unwrap_or("")
                } else {
                    ""
                };
                Self::push_text(block, inner);
            }
            Kind::SetDirective => {
                let n = self.set_directive()?;
                block.push(n);
            }
            Kind::EscapeDirective => {
                let i = self.pos;
                self.pos += 1;
                let img = self.image(i);
                let s = escaped_directive(img);
                Self::push_text(block, &s);
            }
            Kind::DoubleEscape => {
                let mut count = 0;
                loop {
                    self.consume(Kind::DoubleEscape)?;
                    count += 1;
                    if self.kind()? != Kind::DoubleEscape {
                        break;
                    }
                }
                let next = self.pos;
                let nk = self.kind()?;
                let mut control = matches!(
                    nk,
                    Kind::IfDirective | Kind::ElseDirective | Kind::ElseifDirective | Kind::End
                );
                if nk != Kind::Eof {
                    let img = self.image(next);
                    let mut it = img.chars();
                    it.next();
                    if is_directive(it.as_str()) {
                        control = true;
                    }
                }
                let s = if control { "\\" } else { "\\\\" }.repeat(count);
                Self::push_text(block, &s);
            }
            Kind::Word | Kind::BracketedWord => {
                self.directive(block)?;
            }
            Kind::Text
            | Kind::Dot
            | Kind::RParen
            | Kind::LParen
            | Kind::IntegerLiteral
            | Kind::FloatingPointLiteral
            | Kind::StringLiteral
            | Kind::Escape
            | Kind::LCurly
            | Kind::RCurly
            | Kind::EmptyIndex => {
                let i = self.pos;
                self.pos += 1;
                let t = &self.toks[i];
                let img = self.image(i);
                match &t.special {
                    Some(sp) => {
                        let s = format!("{}{}", sp, img);
                        Self::push_text(block, &s);
                    }
                    None => Self::push_text(block, img),
                }
            }
            _ => return Err(self.unexpected("text, a reference or a directive")),
        }
        Ok(())
    }

    fn if_statement(&mut self) -> PResult<Node> {
        let start = self.consume(Kind::IfDirective)?;
        let span = self.tok_span(start);
        self.enter(self.toks[start].start)?;
        self.opt(Kind::Whitespace)?;
        self.consume(Kind::LParen)?;
        let cond = self.expression()?;
        self.consume(Kind::RParen)?;
        let body = self.block()?;
        let mut branches = vec![(cond, body)];
        while self.kind()? == Kind::ElseifDirective {
            self.pos += 1;
            self.opt(Kind::Whitespace)?;
            self.consume(Kind::LParen)?;
            let c = self.expression()?;
            self.consume(Kind::RParen)?;
            let b = self.block()?;
            branches.push((c, b));
        }
        let mut otherwise = None;
        if self.kind()? == Kind::ElseDirective {
            self.pos += 1;
            otherwise = Some(self.block()?);
        }
        if self.kind()? != Kind::End {
            return Err(self.unexpected("#end"));
        }
        self.pos += 1;
        self.leave();
        Ok(Node::If {
            branches,
            otherwise,
            span,
        })
    }

    fn set_directive(&mut self) -> PResult<Node> {
        let start = self.consume(Kind::SetDirective)?;
        let span = self.tok_span(start);
        self.opt(Kind::Whitespace)?;
        if !matches!(self.kind()?, Kind::Identifier | Kind::LCurly) {
            return Err(self.unexpected("a reference"));
        }
        let first = self.pos;
        let mut lhs = self.reference()?;
        // ASTSetDirective: leftReference = left.getFirstToken().image.substring(1), taken
        // after ASTReference.getRoot() stripped escapes and prefixes from that image.
        if lhs.parts.is_empty() {
            let img = stripped_first_image(self.image(first));
            let mut it = img.chars();
            it.next();
            let key = it.as_str().to_string();
            lhs.slot = self.slots.slot(&key);
        }
        self.opt(Kind::Whitespace)?;
        self.consume(Kind::Equals)?;
        let rhs = self.expression()?;
        self.consume(Kind::RParen)?;
        self.lx.in_set = false;
        self.opt(Kind::Newline)?;
        Ok(Node::Set {
            lhs: Box::new(lhs),
            rhs,
            span,
        })
    }

    fn directive(&mut self, block: &mut Block) -> PResult<()> {
        let wi = self.pos;
        let wk = self.kind()?;
        self.pos += 1;
        let span = self.tok_span(wi);
        let img = self.image(wi);
        let name: String = if wk == Kind::BracketedWord {
            // t.image.substring(2, t.image.length() - 1)
            let chars: Vec<char> = img.chars().collect();
            if chars.len() >= 3 {
                chars[2..chars.len() - 1].iter().collect()
            } else {
                String::new()
            }
        } else {
            let mut it = img.chars();
            it.next();
            it.as_str().to_string()
        };
        let known = is_directive(&name);
        let block_type = matches!(name.as_str(), "foreach" | "literal" | "macro" | "define")
            || (!known && name.starts_with('@'));
        self.lx.switch_to(super::lexer::State::Directive);
        debug_assert_eq!(self.toks.len(), self.pos);

        let mut args: Vec<Expr> = Vec::new();
        let mut first_arg_is_ref_root: Option<Arc<str>> = None;
        let mut first_arg_image: Option<String> = None;
        if self.lx.is_left_parenthesis() {
            self.opt(Kind::Whitespace)?;
            self.consume(Kind::LParen)?;
            let mut arg_pos = 0;
            loop {
                let ok = self.lookahead(2, |p, i, lim| {
                    opt!(p, i, p.st(i, lim, Kind::Whitespace));
                    {
                        let save = *i;
                        let r = (|| -> PResult<Sc> {
                            seq!(p.st(i, lim, Kind::Comma));
                            opt!(p, i, p.st(i, lim, Kind::Whitespace));
                            Ok(Sc::Ok)
                        })()?;
                        match r {
                            Sc::Fail => *i = save,
                            Sc::Accept => return Ok(Sc::Accept),
                            Sc::Ok => {}
                        }
                    }
                    p.scan_directive_arg(i, lim)
                })?;
                if !ok {
                    break;
                }
                self.opt(Kind::Whitespace)?;
                if self.opt(Kind::Comma)? {
                    self.opt(Kind::Whitespace)?;
                }
                let arg_tok = self.pos;
                let k = self.kind()?;
                if k == Kind::Word {
                    if name == "macro" && arg_pos == 0 {
                        // a macro name
                    } else if known && !(name == "foreach" && arg_pos == 1) {
                        return Err(self.err_at(
                            self.toks[wi].start,
                            format!("Invalid arg #{} in directive #{}", arg_pos, name),
                        ));
                    }
                } else if name == "macro" && arg_pos == 0 {
                    return Err(self.err_at(
                        self.toks[wi].start,
                        "Invalid first arg in #macro() directive - must be a word token",
                    ));
                }
                let e = self.directive_arg()?;
                if arg_pos == 0 {
                    if let Expr::Ref(r) = &e {
                        first_arg_is_ref_root = Some(r.root.clone());
                    }
                    first_arg_image = Some(self.image(arg_tok).to_string());
                }
                args.push(e);
                arg_pos += 1;
            }
            self.opt(Kind::Whitespace)?;
            self.consume(Kind::RParen)?;
            if !block_type {
                let last = self.pos - 1;
                return self.finish_line_directive(block, &name, known, args, wi, last, span);
            }
        } else {
            if name == "macro" {
                return Err(self.err_at(
                    self.toks[wi].start,
                    "A macro declaration requires at least a name argument",
                ));
            }
            // not a directive
            self.lx.pop();
            self.lx.in_directive = false;
            let last = wi;
            return self.finish_line_directive(block, &name, known, Vec::new(), wi, last, span);
        }

        // a block directive: #foreach, #literal, #macro, #define, #@name
        self.enter(self.toks[wi].start)?;
        let body = self.block()?;
        if self.kind()? != Kind::End {
            return Err(self.unexpected("#end"));
        }
        let end = self.pos;
        self.pos += 1;
        self.leave();
        match name.as_str() {
            "foreach" => {
                if args.is_empty() {
                    return Err(self.err_at(self.toks[wi].start, "#foreach needs arguments"));
                }
                let key: String = match &first_arg_is_ref_root {
                    Some(r) => r.to_string(),
                    None => {
                        let img = first_arg_image.unwrap_or_default();
                        let mut it = img.chars();
                        it.next();
                        it.as_str().to_string()
                    }
                };
                let var = self.slots.slot(&key);
                if args.len() < 3 {
                    block.push(Node::RuntimeError {
                        message: Arc::from("#foreach needs three arguments: $var in $list"),
                        span,
                    });
                    return Ok(());
                }
                let iterable = args.into_iter().nth(2);
                block.push(Node::Foreach(Box::new(Foreach {
                    var,
                    iterable,
                    body,
                    span,
                })));
                Ok(())
            }
            "literal" | "macro" | "define" => Err(self.err_at(
                self.toks[wi].start,
                format!("the #{} directive is not supported", name),
            )),
            _ => {
                // #@name(...) ... #end: an undefined block macro renders its own text
                let lit = self.images(wi, end);
                let _ = body;
                Self::push_text(block, &lit);
                Ok(())
            }
        }
    }

    fn images(&self, from: usize, to: usize) -> String {
        let mut s = String::new();
        for i in from..=to {
            s.push_str(self.image(i));
        }
        s
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_line_directive(
        &mut self,
        block: &mut Block,
        name: &str,
        known: bool,
        mut args: Vec<Expr>,
        wi: usize,
        last: usize,
        span: Span,
    ) -> PResult<()> {
        if !known {
            // an undefined macro call: renders as its own text
            let lit = self.images(wi, last);
            Self::push_text(block, &lit);
            return Ok(());
        }
        match name {
            "break" => {
                if args.len() > 1 {
                    return Err(self.err_at(
                        self.toks[wi].start,
                        "The #break directive only accepts a single scope object",
                    ));
                }
                block.push(Node::Break {
                    scope: args.pop(),
                    span,
                });
                Ok(())
            }
            "stop" => {
                if args.len() > 1 {
                    return Err(self.err_at(
                        self.toks[wi].start,
                        "The #stop directive only accepts a single message parameter",
                    ));
                }
                block.push(Node::Stop);
                Ok(())
            }
            "foreach" => Err(self.err_at(self.toks[wi].start, "#foreach needs arguments")),
            _ => Err(self.err_at(
                self.toks[wi].start,
                format!("the #{} directive is not supported", name),
            )),
        }
    }

    fn directive_arg(&mut self) -> PResult<Expr> {
        match self.kind()? {
            Kind::Identifier | Kind::LCurly => Ok(Expr::Ref(Box::new(self.reference()?))),
            Kind::Word => {
                self.pos += 1;
                Ok(Expr::Word)
            }
            Kind::StringLiteral => self.string_literal(),
            Kind::IntegerLiteral => self.integer_literal(),
            _ => {
                if self.lookahead(usize::MAX, Self::scan_range_lookahead)? {
                    return self.integer_range();
                }
                match self.kind()? {
                    Kind::FloatingPointLiteral => self.float_literal(),
                    Kind::LeftCurley => self.map(),
                    Kind::LBracket => self.object_array(),
                    Kind::True => {
                        self.pos += 1;
                        Ok(Expr::True)
                    }
                    Kind::False => {
                        self.pos += 1;
                        Ok(Expr::False)
                    }
                    _ => Err(self.unexpected("a directive argument")),
                }
            }
        }
    }

    // ------------------------------------------------------------------ references

    fn reference(&mut self) -> PResult<RefNode> {
        let start_off = self.cur_offset();
        self.enter(start_off)?;
        let first = self.pos;
        let formal = match self.kind()? {
            Kind::Identifier => false,
            Kind::LCurly => true,
            _ => return Err(self.unexpected("a reference")),
        };
        self.pos += 1;
        let ident = if formal {
            self.consume(Kind::Identifier)?
        } else {
            first
        };
        let mut parts = Vec::new();
        while self.kind()? == Kind::IndexLBracket {
            parts.push(self.index()?);
        }
        loop {
            let is_dot = self.lookahead(2, |p, i, lim| {
                seq!(p.st(i, lim, Kind::Dot));
                p.alt(i, lim, &[Self::scan_method, Self::scan_identifier])
            })?;
            if !is_dot {
                break;
            }
            self.consume(Kind::Dot)?;
            if self.lookahead(3, Self::scan_method)? {
                let mi = self.consume(Kind::Identifier)?;
                let mspan = self.tok_span(mi);
                let name: Arc<str> = Arc::from(self.image(mi));
                self.consume(Kind::LParen)?;
                let mut args = Vec::new();
                if is_parameter_start(self.kind()?) {
                    args.push(self.parameter()?);
                    while self.opt(Kind::Comma)? {
                        args.push(self.parameter()?);
                    }
                }
                self.consume(Kind::RefMod2RParen)?;
                parts.push(RefPart::Method(name, args, mspan, false));
            } else {
                let ii = self.consume(Kind::Identifier)?;
                parts.push(RefPart::Property(
                    Arc::from(self.image(ii)),
                    self.tok_span(ii),
                ));
            }
            while self.kind()? == Kind::IndexLBracket {
                parts.push(self.index()?);
            }
        }
        if formal {
            self.consume(Kind::RCurly)?;
        }
        // mark the escapeJavaScript(x).replaceAll("\\'","'") idiom
        for k in 0..parts.len().saturating_sub(1) {
            let next_is_fix = matches!(&parts[k + 1], RefPart::Method(n, a, _, _)
                if &**n == "replaceAll" && a.len() == 2
                    && matches!(&a[0], Expr::Str(x, _) if &**x == "\\\\'")
                    && matches!(&a[1], Expr::Str(y, _) if &**y == "'"));
            if let RefPart::Method(n, a, _, fused) = &mut parts[k]
                && next_is_fix
                && &**n == "escapeJavaScript"
                && a.len() == 1
            {
                *fused = true;
            }
        }
        let last = self.pos - 1;
        self.leave();
        Ok(self.make_ref(first, ident, last, parts))
    }

    fn index(&mut self) -> PResult<RefPart> {
        let li = self.consume(Kind::IndexLBracket)?;
        let span = self.tok_span(li);
        self.opt(Kind::Whitespace)?;
        let e = match self.kind()? {
            Kind::StringLiteral => self.string_literal()?,
            Kind::IntegerLiteral => self.integer_literal()?,
            Kind::True => {
                self.pos += 1;
                Expr::True
            }
            Kind::False => {
                self.pos += 1;
                Expr::False
            }
            Kind::Identifier | Kind::LCurly => Expr::Ref(Box::new(self.reference()?)),
            _ => return Err(self.unexpected("an index")),
        };
        self.opt(Kind::Whitespace)?;
        self.consume(Kind::IndexRBracket)?;
        Ok(RefPart::Index(Box::new(e), span))
    }

    fn parameter(&mut self) -> PResult<Expr> {
        self.opt(Kind::Whitespace)?;
        let e = match self.kind()? {
            Kind::StringLiteral => self.string_literal()?,
            Kind::IntegerLiteral => self.integer_literal()?,
            _ => {
                if self.lookahead(usize::MAX, Self::scan_range_lookahead)? {
                    self.integer_range()?
                } else {
                    match self.kind()? {
                        Kind::LeftCurley => self.map()?,
                        Kind::LBracket => self.object_array()?,
                        Kind::True => {
                            self.pos += 1;
                            Expr::True
                        }
                        Kind::False => {
                            self.pos += 1;
                            Expr::False
                        }
                        Kind::Identifier | Kind::LCurly => Expr::Ref(Box::new(self.reference()?)),
                        Kind::FloatingPointLiteral => self.float_literal()?,
                        _ => return Err(self.unexpected("an argument")),
                    }
                }
            }
        };
        self.opt(Kind::Whitespace)?;
        Ok(e)
    }

    /// ASTReference.getRoot() and literal(): how the reference prints when null.
    fn make_ref(
        &mut self,
        first: usize,
        ident: usize,
        last: usize,
        parts: Vec<RefPart>,
    ) -> RefNode {
        let span = self.tok_span(first);
        let image = self.image(first);
        let ident_img = self.image(ident);
        let empty: Arc<str> = Arc::from("");

        if let Some(_sb) = image.find("\\!") {
            let (null_string, root) = match image.find('$') {
                None => (image.to_string(), image.to_string()),
                Some(i) => {
                    let bytes = image.as_bytes();
                    let mut k = i;
                    while k < bytes.len() && bytes[k] != b'\\' {
                        k += 1;
                    }
                    let start = k;
                    let mut count = 0;
                    while k < bytes.len() && bytes[k] == b'\\' {
                        count += 1;
                        k += 1;
                    }
                    if count == 0 {
                        (image.to_string(), image.to_string())
                    } else {
                        let mut ns = String::new();
                        ns.push_str(&image[..start]);
                        ns.push_str(&image[start..start + count - 1]);
                        ns.push_str(&image[start + count..]);
                        (ns.clone(), ns)
                    }
                }
            };
            let ns: Arc<str> = Arc::from(null_string);
            return RefNode {
                span,
                slot: self.slots.slot(&root),
                root: Arc::from(root),
                kind: RefKind::NonComputable,
                escaped: false,
                esc_prefix: empty.clone(),
                more_prefix: empty,
                null_string: ns.clone(),
                literal: ns,
                parts,
            };
        }

        let mut img = image;
        let mut escaped = false;
        let mut esc_prefix = "";
        let lead = img.bytes().take_while(|&c| c == b'\\').count();
        if lead > 0 {
            escaped = lead % 2 == 1;
            esc_prefix = &img[..lead / 2];
            img = &img[lead..];
        }
        let mut more_prefix = "";
        if let Some(loc) = img.rfind('$')
            && loc > 0
        {
            more_prefix = &img[..loc];
            img = &img[loc..];
        }
        self.modified.insert(first, img.to_string());
        let literal = self.literal_range(first, last);
        let mut null_string = literal.clone();
        let (kind, root): (RefKind, &str) = if img.starts_with("$!") {
            if !escaped {
                null_string = String::new();
            }
            if img.starts_with("$!{") {
                (RefKind::Quiet, ident_img)
            } else {
                (RefKind::Quiet, img.strip_prefix("$!").unwrap_or(img))
            }
        } else if img == "${" {
            (RefKind::Formal, ident_img)
        } else if let Some(r) = img.strip_prefix('$') {
            (RefKind::Normal, r)
        } else {
            (RefKind::Runt, img)
        };
        RefNode {
            span,
            slot: self.slots.slot(root),
            root: Arc::from(root),
            kind,
            escaped,
            esc_prefix: Arc::from(esc_prefix),
            more_prefix: Arc::from(more_prefix),
            null_string: Arc::from(null_string),
            literal: Arc::from(literal),
            parts,
        }
    }

    // ------------------------------------------------------------------ literals

    fn string_literal(&mut self) -> PResult<Expr> {
        let i = self.consume(Kind::StringLiteral)?;
        let span = self.tok_span(i);
        let img = self.image(i);
        let quote = img.as_bytes()[0];
        let inner = &img[1..img.len() - 1];
        let mut image = if quote == b'"' {
            unescape_unicode(inner).map_err(|m| self.err_at(self.toks[i].start, m))?
        } else {
            inner.to_string()
        };
        let q = if quote == b'"' { "\"\"" } else { "''" };
        if image.contains(q) {
            image = image.replace(q, &q[..1]);
        }
        let interpolate = quote == b'"' && (img.contains('$') || img.contains('#'));
        if !interpolate {
            let id = self.slots.lits;
            self.slots.lits += 1;
            return Ok(Expr::Str(Arc::from(image), id));
        }
        let contains_line_comment = image.contains("##");
        let text = if contains_line_comment {
            image
        } else {
            image + " "
        };
        let base = Base {
            line: span.line,
            col: span.col,
        };
        let body = {
            let mut sub = Parser::new(self.file, &text, self.slots, Some(base), self.depth + 1);
            if sub.depth > MAX_NESTING {
                return Err(self.err_at(self.toks[i].start, "nesting too deep"));
            }
            sub.process()?
        };
        Ok(Expr::Interp {
            body,
            strip: !contains_line_comment,
            span,
        })
    }

    fn integer_literal(&mut self) -> PResult<Expr> {
        let i = self.consume(Kind::IntegerLiteral)?;
        let s = self.image(i);
        if let Ok(v) = s.parse::<i32>() {
            Ok(Expr::Int(v))
        } else if let Ok(v) = s.parse::<i64>() {
            Ok(Expr::Long(v))
        } else if let Ok(v) = s.parse::<i128>() {
            Ok(Expr::BigInt(v))
        } else {
            Err(self.err_at(self.toks[i].start, "integer literal too large"))
        }
    }

    fn float_literal(&mut self) -> PResult<Expr> {
        let i = self.consume(Kind::FloatingPointLiteral)?;
        let s = self.image(i);
        match s.parse::<f64>() {
            Ok(v) => Ok(Expr::Double(v)),
            Err(_) => Err(self.err_at(self.toks[i].start, "bad number")),
        }
    }

    fn integer_range(&mut self) -> PResult<Expr> {
        let li = self.consume(Kind::LBracket)?;
        let span = self.tok_span(li);
        self.opt(Kind::Whitespace)?;
        let from = self.ref_or_int()?;
        self.opt(Kind::Whitespace)?;
        self.consume(Kind::DoubleDot)?;
        self.opt(Kind::Whitespace)?;
        let to = self.ref_or_int()?;
        self.opt(Kind::Whitespace)?;
        let ri = self.consume(Kind::RBracket)?;
        let literal: Arc<str> = Arc::from(&self.src[self.toks[li].start..self.toks[ri].end]);
        Ok(Expr::Range {
            from: Box::new(from),
            to: Box::new(to),
            span,
            literal,
        })
    }

    fn ref_or_int(&mut self) -> PResult<Expr> {
        match self.kind()? {
            Kind::Identifier | Kind::LCurly => Ok(Expr::Ref(Box::new(self.reference()?))),
            Kind::IntegerLiteral => self.integer_literal(),
            _ => Err(self.unexpected("a reference or an integer")),
        }
    }

    fn map(&mut self) -> PResult<Expr> {
        let li = self.consume(Kind::LeftCurley)?;
        self.enter(self.toks[li].start)?;
        let mut entries = Vec::new();
        let has_entries = self.lookahead(2, |p, i, lim| {
            seq!(p.scan_parameter(i, lim));
            seq!(p.st(i, lim, Kind::Colon));
            seq!(p.scan_parameter(i, lim));
            Ok(Sc::Ok)
        })?;
        if has_entries {
            let k = self.parameter()?;
            self.consume(Kind::Colon)?;
            let v = self.parameter()?;
            entries.push((k, v));
            while self.opt(Kind::Comma)? {
                let k = self.parameter()?;
                self.consume(Kind::Colon)?;
                let v = self.parameter()?;
                entries.push((k, v));
            }
        } else {
            self.opt(Kind::Whitespace)?;
        }
        match self.kind()? {
            Kind::RightCurley | Kind::RCurly => self.pos += 1,
            _ => return Err(self.unexpected("\"}\"")),
        }
        self.leave();
        Ok(Expr::Map(entries))
    }

    fn object_array(&mut self) -> PResult<Expr> {
        let li = self.consume(Kind::LBracket)?;
        self.enter(self.toks[li].start)?;
        let mut items = Vec::new();
        if is_parameter_start(self.kind()?) {
            items.push(self.parameter()?);
            while self.opt(Kind::Comma)? {
                items.push(self.parameter()?);
            }
        }
        self.consume(Kind::RBracket)?;
        self.leave();
        Ok(Expr::List(items))
    }

    // ------------------------------------------------------------------ expressions

    fn expression(&mut self) -> PResult<Expr> {
        let off = self.cur_offset();
        self.enter(off)?;
        let e = self.or_expr()?;
        self.leave();
        Ok(e)
    }

    fn binary(&self, op: BinOp, left: Expr, right: Expr, span: Span, from: usize) -> Expr {
        let to = self.toks[self.pos - 1].end;
        let literal: Arc<str> = Arc::from(self.src.get(from..to).unwrap_or(""));
        Expr::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
            span,
            literal,
        }
    }

    fn or_expr(&mut self) -> PResult<Expr> {
        let mut e = self.and_expr()?;
        while self.kind()? == Kind::LogicalOr {
            let span = self.tok_span(self.pos);
            self.pos += 1;
            let from = self.cur_offset();
            let r = self.and_expr()?;
            e = self.binary(BinOp::Or, e, r, span, from);
        }
        Ok(e)
    }

    fn and_expr(&mut self) -> PResult<Expr> {
        let mut e = self.eq_expr()?;
        while self.kind()? == Kind::LogicalAnd {
            let span = self.tok_span(self.pos);
            self.pos += 1;
            let from = self.cur_offset();
            let r = self.eq_expr()?;
            e = self.binary(BinOp::And, e, r, span, from);
        }
        Ok(e)
    }

    fn eq_expr(&mut self) -> PResult<Expr> {
        let mut e = self.rel_expr()?;
        loop {
            let op = match self.kind()? {
                Kind::LogicalEquals => BinOp::Eq,
                Kind::LogicalNotEquals => BinOp::Ne,
                _ => break,
            };
            let span = self.tok_span(self.pos);
            self.pos += 1;
            let from = self.cur_offset();
            let r = self.rel_expr()?;
            e = self.binary(op, e, r, span, from);
        }
        Ok(e)
    }

    fn rel_expr(&mut self) -> PResult<Expr> {
        let mut e = self.add_expr()?;
        loop {
            let op = match self.kind()? {
                Kind::LogicalLt => BinOp::Lt,
                Kind::LogicalGt => BinOp::Gt,
                Kind::LogicalLe => BinOp::Le,
                Kind::LogicalGe => BinOp::Ge,
                _ => break,
            };
            let span = self.tok_span(self.pos);
            self.pos += 1;
            let from = self.cur_offset();
            let r = self.add_expr()?;
            e = self.binary(op, e, r, span, from);
        }
        Ok(e)
    }

    fn add_expr(&mut self) -> PResult<Expr> {
        let mut e = self.mul_expr()?;
        loop {
            let op = match self.kind()? {
                Kind::Plus => BinOp::Add,
                Kind::Minus => BinOp::Sub,
                _ => break,
            };
            let span = self.tok_span(self.pos);
            self.pos += 1;
            let from = self.cur_offset();
            let r = self.mul_expr()?;
            e = self.binary(op, e, r, span, from);
        }
        Ok(e)
    }

    fn mul_expr(&mut self) -> PResult<Expr> {
        let mut e = self.unary_expr()?;
        loop {
            let op = match self.kind()? {
                Kind::Multiply => BinOp::Mul,
                Kind::Divide => BinOp::Div,
                Kind::Modulus => BinOp::Mod,
                _ => break,
            };
            let span = self.tok_span(self.pos);
            self.pos += 1;
            let from = self.cur_offset();
            let r = self.unary_expr()?;
            e = self.binary(op, e, r, span, from);
        }
        Ok(e)
    }

    fn unary_expr(&mut self) -> PResult<Expr> {
        let is_not = self.lookahead(2, |p, i, lim| {
            opt!(p, i, p.st(i, lim, Kind::Whitespace));
            p.st(i, lim, Kind::LogicalNot)
        })?;
        if is_not {
            let off = self.cur_offset();
            self.enter(off)?;
            self.opt(Kind::Whitespace)?;
            self.consume(Kind::LogicalNot)?;
            let e = self.unary_expr()?;
            self.leave();
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary_expr()
    }

    fn primary_expr(&mut self) -> PResult<Expr> {
        self.opt(Kind::Whitespace)?;
        let e = match self.kind()? {
            Kind::StringLiteral => self.string_literal()?,
            Kind::Identifier | Kind::LCurly => Expr::Ref(Box::new(self.reference()?)),
            Kind::IntegerLiteral => self.integer_literal()?,
            _ => {
                if self.lookahead(usize::MAX, Self::scan_range_lookahead)? {
                    self.integer_range()?
                } else {
                    match self.kind()? {
                        Kind::FloatingPointLiteral => self.float_literal()?,
                        Kind::LeftCurley => self.map()?,
                        Kind::LBracket => self.object_array()?,
                        Kind::True => {
                            self.pos += 1;
                            Expr::True
                        }
                        Kind::False => {
                            self.pos += 1;
                            Expr::False
                        }
                        Kind::LParen => {
                            self.pos += 1;
                            let from = self.cur_offset();
                            let inner = self.expression()?;
                            let to = self.toks[self.pos - 1].end.max(from);
                            let literal: Arc<str> = Arc::from(self.src.get(from..to).unwrap_or(""));
                            self.consume(Kind::RParen)?;
                            Expr::Group(Box::new(inner), literal)
                        }
                        _ => return Err(self.unexpected("an expression")),
                    }
                }
            }
        };
        self.opt(Kind::Whitespace)?;
        Ok(e)
    }
}

/// The first token's image after ASTReference.getRoot() stripped leading backslashes and
/// any text before the last `$`.
fn stripped_first_image(image: &str) -> &str {
    if image.contains("\\!") {
        return image;
    }
    let lead = image.bytes().take_while(|&c| c == b'\\').count();
    let img = &image[lead..];
    match img.rfind('$') {
        Some(loc) if loc > 0 => &img[loc..],
        _ => img,
    }
}

/// Parser.escapedDirective(): `\#if` prints `#if`, `\\\#if` prints `\#if`; an escaped word
/// that is not a directive prints unchanged.
fn escaped_directive(image: &str) -> String {
    let i_last = image.rfind('\\').unwrap_or(0);
    let str_directive = &image[i_last + 1..];
    let mut dir_tag = &str_directive[1..];
    if dir_tag.starts_with('{') && dir_tag.len() >= 2 {
        dir_tag = &dir_tag[1..dir_tag.len() - 1];
    }
    let recognized =
        is_directive(dir_tag) || matches!(dir_tag, "if" | "end" | "set" | "else" | "elseif");
    if recognized {
        format!("{}{}", &image[..i_last / 2], str_directive)
    } else {
        image.to_string()
    }
}

/// ASTStringLiteral.unescape(): only `\uXXXX` is processed in double-quoted strings, with
/// Java's Integer.parseInt(s, 16) on the 4 characters after `\u`.
fn unescape_unicode(s: &str) -> Result<String, String> {
    if !s.contains("\\u") {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new();
    let mut rest = s;
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        for r in char::decode_utf16(units.drain(..)) {
            out.push(r.unwrap_or('?'));
        }
    };
    while let Some(u) = rest.find("\\u") {
        let before = &rest[..u];
        if !before.is_empty() {
            flush(&mut units, &mut out);
            out.push_str(before);
        }
        let after = &rest[u + 2..];
        let four: String = after.chars().take(4).collect();
        if four.chars().count() < 4 {
            return Err("bad \\u escape in string literal".to_string());
        }
        let v = parse_java_hex_int(&four).ok_or_else(|| format!("bad \\u escape \\u{}", four))?;
        units.push(v as u16);
        rest = &after[four.len()..];
    }
    flush(&mut units, &mut out);
    out.push_str(rest);
    Ok(out)
}

/// Integer.parseInt(s, 16): optional sign, then hex digits.
fn parse_java_hex_int(s: &str) -> Option<i32> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let v = i64::from_str_radix(digits, 16).ok()?;
    let v = if neg { -v } else { v };
    i32::try_from(v).ok()
}
