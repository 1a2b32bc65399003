//! The syntax tree. Every node that can fail at run time carries its line:column [`Span`].

use std::sync::Arc;

/// A 1-based line:column position in the template source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub line: u32,
    pub col: u32,
}

/// A sequence of nodes.
pub type Block = Vec<Node>;

#[derive(Debug, Clone)]
pub enum Node {
    /// Literal output.
    Text(Arc<str>),
    /// `$a.b(...)` and its variants, rendered.
    Ref(Box<RefNode>),
    /// `#if / #elseif / #else / #end`.
    If {
        branches: Vec<(Expr, Block)>,
        otherwise: Option<Block>,
        span: Span,
    },
    /// `#foreach($var in iterable) body #end`.
    Foreach(Box<Foreach>),
    /// `#set($lhs = rhs)`.
    Set {
        lhs: Box<RefNode>,
        rhs: Expr,
        span: Span,
    },
    /// `#break` (no argument) or `#break($scope)`.
    Break { scope: Option<Expr>, span: Span },
    /// `#stop` or `#stop(message)`.
    Stop,
    /// An error Velocity raises only when the node is rendered.
    RuntimeError { message: Arc<str>, span: Span },
}

#[derive(Debug, Clone)]
pub struct Foreach {
    /// Variable slot of the loop variable.
    pub var: u32,
    pub iterable: Option<Expr>,
    pub body: Block,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Normal,
    Formal,
    Quiet,
    /// An identifier without `$` (inside method arguments): renders as its name, value null.
    Runt,
    /// `$\!x`: never computed, renders as its (unescaped) text.
    NonComputable,
}

/// A reference, with the text Velocity prints when it is null.
#[derive(Debug, Clone)]
pub struct RefNode {
    pub span: Span,
    /// Variable slot of the root identifier.
    pub slot: u32,
    pub root: Arc<str>,
    pub kind: RefKind,
    pub escaped: bool,
    pub esc_prefix: Arc<str>,
    pub more_prefix: Arc<str>,
    /// What a null value renders as (the literal text, or "" for `$!`).
    pub null_string: Arc<str>,
    /// The reference's source text (Velocity's `literal()`).
    pub literal: Arc<str>,
    pub parts: Vec<RefPart>,
}

#[derive(Debug, Clone)]
pub enum RefPart {
    Property(Arc<str>, Span),
    /// name, arguments, position; the flag marks `escapeJavaScript(x)` directly followed by
    /// `.replaceAll("\\'","'")` (API Gateway's documented idiom), evaluated in one pass when
    /// the receiver is `$util`.
    Method(Arc<str>, Vec<Expr>, Span, bool),
    Index(Box<Expr>, Span),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone)]
pub enum Expr {
    /// A constant string (single-quoted, or double-quoted without `$`/`#`), and its index in
    /// the template's literal table (renders share one copy per literal).
    Str(Arc<str>, u32),
    /// A double-quoted string with references or directives: rendered, then `strip` tells
    /// whether to drop the last character (Velocity parses it with a trailing space).
    Interp {
        body: Block,
        strip: bool,
        span: Span,
    },
    Int(i32),
    Long(i64),
    BigInt(i128),
    Double(f64),
    True,
    False,
    Ref(Box<RefNode>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Range {
        from: Box<Expr>,
        to: Box<Expr>,
        span: Span,
        literal: Arc<str>,
    },
    /// A parenthesized expression (Velocity's ASTExpression node).
    Group(Box<Expr>, Arc<str>),
    Not(Box<Expr>),
    /// `literal` is what Velocity's literal() gives for this node: JJTree opens the node
    /// scope of `a + b` at `b`, so it is the right operand's text.
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
        span: Span,
        literal: Arc<str>,
    },
    /// A bare word argument of a directive (`in`); its value is null.
    Word,
}
