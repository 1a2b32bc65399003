//! The evaluator: renders a parsed template over [`Value`]s with Velocity 1.7's run-time
//! semantics (null handling, `#set` of null, `#foreach` scopes and limits, Java methods).

use std::cell::RefCell;
use std::rc::Rc;

use super::ast::*;
use super::error::Error;
use super::javaregex;
use super::value::*;

/// Velocity's `directive.foreach.maxloops` as API Gateway sets it.
pub const MAX_FOREACH: usize = 1000;
/// Evaluation steps (nodes and expressions) allowed for one render.
pub const MAX_STEPS: u64 = 20_000_000;
/// Largest list a range `[a..b]` may build outside `#foreach`.
pub const MAX_RANGE: i64 = 1_000_000;

/// Control flow besides normal completion.
pub(crate) enum Ctl {
    Err(Box<Error>),
    /// StopCommand: `Nearest` (#break), `All` (#stop), or a given scope (#break($foreach)).
    Stop(Stop),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Nearest,
    All,
    Scope(u64),
}

type R<T> = Result<T, Ctl>;

pub(crate) struct Renderer<'t> {
    pub file: &'t str,
    pub vars: Vec<Value>,
    steps: u64,
    next_scope: u64,
    pub foreach_slot: u32,
    pub count_slot: u32,
    pub has_next_slot: u32,
    lits: Vec<Option<Rc<str>>>,
}

#[cold]
fn err(file: &str, span: Span, msg: impl Into<String>) -> Ctl {
    Ctl::Err(Box::new(Error::new(file, span.line, span.col, msg)))
}

/// A `#foreach` iterator (Velocity's getIterator: a range, a collection, a map's values;
/// anything else is not iterable).
enum ForIter {
    /// `[l..r]`: `left` more integers from `next`, by `step`
    Range { next: i64, step: i64, left: i64 },
    /// A list, checked against concurrent modification (Java's fail-fast iterator).
    List {
        l: Rc<RefCell<JList>>,
        expected: u64,
        cursor: usize,
    },
    /// A map's values, checked likewise.
    Map {
        m: Rc<RefCell<JMap>>,
        expected: u64,
        cursor: usize,
    },
    /// A copy of a `$foreach` scope's values.
    Values(std::vec::IntoIter<Value>),
}

impl ForIter {
    fn new(v: Value) -> Option<ForIter> {
        Some(match v {
            Value::List(l) => {
                let expected = l.borrow().mod_count;
                ForIter::List {
                    l,
                    expected,
                    cursor: 0,
                }
            }
            Value::Map(m) => {
                let expected = m.borrow().mod_count;
                ForIter::Map {
                    m,
                    expected,
                    cursor: 0,
                }
            }
            Value::Scope(s) => {
                let vals: Vec<Value> = s
                    .borrow()
                    .storage
                    .entries()
                    .iter()
                    .map(|(_, v)| v.clone())
                    .collect();
                ForIter::Values(vals.into_iter())
            }
            _ => return None,
        })
    }

    fn next(&mut self, file: &str, span: Span) -> Option<R<Value>> {
        let cme = || {
            Some(Err(err(
                file,
                span,
                "ConcurrentModificationException in #foreach",
            )))
        };
        match self {
            ForIter::Range { next, step, left } => {
                if *left <= 0 {
                    return None;
                }
                let v = Value::Int(*next as i32);
                *next += *step;
                *left -= 1;
                Some(Ok(v))
            }
            ForIter::List {
                l,
                expected,
                cursor,
            } => {
                let l = l.borrow();
                if *cursor >= l.items.len() {
                    return None;
                }
                if l.mod_count != *expected {
                    return cme();
                }
                *cursor += 1;
                Some(Ok(l.items[*cursor - 1].clone()))
            }
            ForIter::Map {
                m,
                expected,
                cursor,
            } => {
                let m = m.borrow();
                if *cursor >= m.len() {
                    return None;
                }
                if m.mod_count != *expected {
                    return cme();
                }
                *cursor += 1;
                Some(Ok(m.entries()[*cursor - 1].1.clone()))
            }
            ForIter::Values(it) => it.next().map(Ok),
        }
    }
}

/// Result of a method lookup and call.
enum Call {
    /// No such method: Velocity yields null.
    NoMethod,
    Value(Value),
}

impl<'t> Renderer<'t> {
    pub(crate) fn new(
        file: &'t str,
        nslots: usize,
        nlits: usize,
        foreach_slot: u32,
        count_slot: u32,
        has_next_slot: u32,
    ) -> Self {
        Renderer {
            lits: vec![None; nlits],
            file,
            vars: vec![Value::Null; nslots],
            steps: 0,
            next_scope: 1,
            foreach_slot,
            count_slot,
            has_next_slot,
        }
    }

    #[inline]
    fn step(&mut self, span: Span) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.too_many_steps(span));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn too_many_steps(&self, span: Span) -> Ctl {
        err(
            self.file,
            span,
            format!("template evaluation exceeded {} steps", MAX_STEPS),
        )
    }

    /// The variable a reference without parts (`$x`, `$!x`, `${x}`) reads, or None for any
    /// other reference (with parts, or never computed).
    #[inline]
    fn plain_var(&self, r: &RefNode) -> Option<&Value> {
        if r.parts.is_empty() && !matches!(r.kind, RefKind::Runt | RefKind::NonComputable) {
            Some(&self.vars[r.slot as usize])
        } else {
            None
        }
    }

    #[inline]
    fn check_out(&self, out: &str, span: Span) -> R<()> {
        if out.len() > MAX_STRING {
            return Err(self.too_large(out, span));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn too_large(&self, out: &str, span: Span) -> Ctl {
        // `out` is over MAX_STRING: check_size fails, with the message
        err(self.file, span, check_size(out).err().unwrap_or_default())
    }

    /// Renders the top-level block: #stop and #break end the output early.
    pub(crate) fn render_root(&mut self, block: &Block, out: &mut String) -> Result<(), Error> {
        match self.render_block(block, out) {
            Ok(()) => Ok(()),
            Err(Ctl::Err(e)) => Err(*e),
            Err(Ctl::Stop(Stop::Nearest | Stop::All)) => Ok(()),
            Err(Ctl::Stop(Stop::Scope(_))) => Err(Error::new(
                self.file,
                1,
                1,
                "#break: the scope it names has ended",
            )),
        }
    }

    pub(crate) fn render_block(&mut self, block: &Block, out: &mut String) -> R<()> {
        for node in block {
            self.render_node(node, out)?;
        }
        Ok(())
    }

    fn render_node(&mut self, node: &Node, out: &mut String) -> R<()> {
        match node {
            Node::Text(t) => {
                out.push_str(t);
                if out.len() > MAX_STRING {
                    return Err(err(self.file, Span { line: 1, col: 1 }, "output too large"));
                }
                Ok(())
            }
            Node::Ref(r) => {
                self.step(r.span)?;
                self.render_ref(r, out)?;
                self.check_out(out, r.span)
            }
            Node::If {
                branches,
                otherwise,
                span,
            } => {
                self.step(*span)?;
                for (cond, body) in branches {
                    if self.eval_bool(cond)? {
                        return self.render_block(body, out);
                    }
                }
                if let Some(b) = otherwise {
                    return self.render_block(b, out);
                }
                Ok(())
            }
            Node::Set { lhs, rhs, span } => {
                self.step(*span)?;
                let v = self.eval_value(rhs)?;
                if v.is_null() {
                    // directive.set.null.allowed = false: the context is not modified
                    return Ok(());
                }
                if lhs.parts.is_empty() {
                    self.vars[lhs.slot as usize] = v;
                    Ok(())
                } else {
                    self.set_value(lhs, v)
                }
            }
            Node::Foreach(f) => self.foreach(f, out),
            Node::Break { scope, span } => {
                self.step(*span)?;
                match scope {
                    None => Err(Ctl::Stop(Stop::Nearest)),
                    Some(e) => match self.eval_value(e)? {
                        Value::Scope(s) => Err(Ctl::Stop(Stop::Scope(s.borrow().id))),
                        _ => Err(err(
                            self.file,
                            *span,
                            "#break: the argument is not a scope such as $foreach",
                        )),
                    },
                }
            }
            Node::Stop => Err(Ctl::Stop(Stop::All)),
            Node::RuntimeError { message, span } => Err(err(self.file, *span, message.to_string())),
        }
    }

    // ------------------------------------------------------------------ references

    fn render_ref(&mut self, r: &RefNode, out: &mut String) -> R<()> {
        if r.kind == RefKind::Runt {
            out.push_str(&r.root);
            return Ok(());
        }
        if r.escaped {
            let v = self.execute_ref(r)?;
            out.push_str(&r.esc_prefix);
            if v.is_null() {
                out.push('\\');
            }
            out.push_str(&r.null_string);
            return Ok(());
        }
        if let Some(Value::Str(v)) = self.plain_var(r) {
            // `$x` holding a string: copied straight from the variable
            out.push_str(&r.esc_prefix);
            out.push_str(&r.more_prefix);
            out.push_str(v);
            return Ok(());
        }
        // A trailing $util.escapeJavaScript(x).replaceAll("\\'","'") writes itself to `out`.
        let Some(v) = self.eval_ref(r, Some(out))? else {
            return Ok(());
        };
        if v.is_null() {
            out.push_str(&r.esc_prefix);
            out.push_str(&r.esc_prefix);
            out.push_str(&r.more_prefix);
            out.push_str(&r.null_string);
        } else {
            out.push_str(&r.esc_prefix);
            out.push_str(&r.more_prefix);
            match &v {
                Value::Str(s) => out.push_str(s),
                other => write_java(out, other, 0).map_err(|m| err(self.file, r.span, m))?,
            }
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn execute_ref(&mut self, r: &RefNode) -> R<Value> {
        // without an output there is nothing to write to: always a value
        Ok(self.eval_ref(r, None)?.unwrap_or_default())
    }

    /// Evaluates a reference. Given `out`, a reference ending in the fused
    /// `escapeJavaScript(x).replaceAll("\\'","'")` on `$util` with a string `x` is rendered
    /// there directly, after the reference's prefixes, and gives None: the escaped text
    /// is written without first being built as a string of its own.
    fn eval_ref(&mut self, r: &RefNode, out: Option<&mut String>) -> R<Option<Value>> {
        if matches!(r.kind, RefKind::Runt | RefKind::NonComputable) {
            return Ok(Some(Value::Null));
        }
        let mut i = 0;
        let mut cur = match r.parts.first() {
            // `$map.key`, `$foreach.hasNext`: the root is read in place (a property read
            // cannot change a variable), saving a copy of it
            Some(RefPart::Property(name, span)) => {
                let root = &self.vars[r.slot as usize];
                if root.is_null() {
                    return Ok(Some(Value::Null));
                }
                self.step(*span)?;
                i = 1;
                get_property(&self.vars[r.slot as usize], name)
            }
            _ => self.vars[r.slot as usize].clone(),
        };
        while i < r.parts.len() {
            if cur.is_null() {
                return Ok(Some(Value::Null));
            }
            let part = &r.parts[i];
            if let (RefPart::Method(_, args, span, true), Value::Host(h)) = (part, &cur) {
                // escapeJavaScript(x).replaceAll("\\'","'") in one pass
                self.step(*span)?;
                let arg = self.eval_value(&args[0])?;
                if h.fuses_escape_js() {
                    match arg {
                        // escapeJavaScript(null) is null
                        Value::Null => {
                            self.step(*span)?;
                            return Ok(Some(Value::Null));
                        }
                        Value::Str(s) => {
                            self.step(*span)?;
                            if i + 2 == r.parts.len()
                                && let Some(out) = out
                            {
                                out.push_str(&r.esc_prefix);
                                out.push_str(&r.more_prefix);
                                let before = out.len();
                                if !h.escape_js_keep_quote_into(&s, out) {
                                    out.push_str(&s);
                                }
                                // the size check the built string would have had, at the
                                // method's position
                                self.check_out(&out[before..], *span)?;
                                return Ok(None);
                            }
                            let mut buf = String::new();
                            cur = if h.escape_js_keep_quote_into(&s, &mut buf) {
                                self.check_out(&buf, *span)?;
                                Value::string(buf)
                            } else {
                                Value::Str(s)
                            };
                            i += 2;
                            continue;
                        }
                        _ => {}
                    }
                }
                cur = match self.call_method(
                    &cur,
                    "escapeJavaScript",
                    std::slice::from_ref(&arg),
                    *span,
                )? {
                    Call::NoMethod => Value::Null,
                    Call::Value(v) => v,
                };
                i += 1;
                continue;
            }
            cur = self.apply_part(cur, part)?;
            i += 1;
        }
        Ok(Some(cur))
    }

    #[inline]
    fn apply_part(&mut self, cur: Value, part: &RefPart) -> R<Value> {
        match part {
            RefPart::Property(name, span) => {
                self.step(*span)?;
                Ok(get_property(&cur, name))
            }
            RefPart::Method(name, args, span, _) => {
                self.step(*span)?;
                if let (Value::Map(m), [arg]) = (&cur, &args[..])
                    && &**name == "get"
                {
                    // Map.get, the commonest call ($headers.get($name)), without the
                    // general dispatch: what map_method and call_method do for it
                    let key = self.eval_value(arg)?;
                    let v = m.borrow().get(&key).cloned().unwrap_or(Value::Null);
                    if let Value::Str(s) = &v {
                        self.check_out(s, *span)?;
                    }
                    return Ok(v);
                }
                let r = if args.len() <= 3 {
                    let mut buf: [Value; 3] = Default::default();
                    for (slot, a) in buf.iter_mut().zip(args.iter()) {
                        *slot = self.eval_value(a)?;
                    }
                    self.call_method(&cur, name, &buf[..args.len()], *span)?
                } else {
                    let mut vals = Vec::with_capacity(args.len());
                    for a in args {
                        vals.push(self.eval_value(a)?);
                    }
                    self.call_method(&cur, name, &vals, *span)?
                };
                match r {
                    Call::NoMethod => Ok(Value::Null),
                    Call::Value(v) => Ok(v),
                }
            }
            RefPart::Index(e, span) => {
                self.step(*span)?;
                let arg = self.eval_value(e)?;
                let arg = self.adjust_negative_index(&cur, arg, *span)?;
                match self.call_method(&cur, "get", std::slice::from_ref(&arg), *span)? {
                    Call::NoMethod => Ok(Value::Null),
                    Call::Value(v) => Ok(v),
                }
            }
        }
    }

    /// ASTIndex.adjMinusIndexArg: a negative Integer index counts from `size()`.
    fn adjust_negative_index(&mut self, cur: &Value, arg: Value, span: Span) -> R<Value> {
        if let Value::Int(i) = arg
            && i < 0
        {
            let size = match self.call_method(cur, "size", &[], span)? {
                Call::Value(Value::Int(n)) => n,
                _ => {
                    return Err(err(
                        self.file,
                        span,
                        format!(
                            "A 'size()' method required for negative value {} does not exist",
                            i
                        ),
                    ));
                }
            };
            return Ok(Value::Int(size.wrapping_add(i)));
        }
        Ok(arg)
    }

    fn set_value(&mut self, lhs: &RefNode, value: Value) -> R<()> {
        let mut cur = self.vars[lhs.slot as usize].clone();
        if cur.is_null() {
            return Ok(());
        }
        let n = lhs.parts.len();
        for part in &lhs.parts[..n - 1] {
            cur = self.apply_part(cur, part)?;
            if cur.is_null() {
                return Ok(());
            }
        }
        match &lhs.parts[n - 1] {
            RefPart::Index(e, span) => {
                let arg = self.eval_value(e)?;
                let arg = self.adjust_negative_index(&cur, arg, *span)?;
                match &cur {
                    Value::List(l) if l.borrow().kind != ListKind::View => {
                        let Value::Int(i) = arg else { return Ok(()) };
                        let mut l = l.borrow_mut();
                        if i < 0 || i as usize >= l.items.len() {
                            return Err(err(
                                self.file,
                                *span,
                                format!("Index {} out of bounds for length {}", i, l.items.len()),
                            ));
                        }
                        l.items[i as usize] = value;
                    }
                    Value::Map(m) => {
                        m.borrow_mut().put(arg, value);
                    }
                    Value::Scope(s) => {
                        s.borrow_mut().storage.put(arg, value);
                    }
                    _ => {}
                }
            }
            RefPart::Property(name, _) | RefPart::Method(name, _, _, _) => match &cur {
                Value::Map(m) => {
                    m.borrow_mut().put(Value::str(name), value);
                }
                Value::Scope(s) => {
                    s.borrow_mut().storage.put(Value::str(name), value);
                }
                _ => {}
            },
        }
        Ok(())
    }

    // ------------------------------------------------------------------ #foreach

    fn foreach(&mut self, f: &Foreach, out: &mut String) -> R<()> {
        self.step(f.span)?;
        let Some(iterable) = &f.iterable else {
            return Ok(());
        };
        let mut it = match iterable {
            Expr::Range { from, to, .. } => {
                let (a, b) = (self.eval_value(from)?, self.eval_value(to)?);
                if !a.is_number() || !b.is_number() {
                    return Ok(());
                }
                let (l, r) = (java_int_value(&a) as i64, java_int_value(&b) as i64);
                ForIter::Range {
                    next: l,
                    step: if l >= r { -1 } else { 1 },
                    left: (l - r).abs() + 1,
                }
            }
            e => {
                let v = self.eval_value(e)?;
                match ForIter::new(v) {
                    Some(it) => it,
                    None => return Ok(()),
                }
            }
        };
        let var = f.var as usize;
        let saved_var = self.vars[var].clone();
        let saved_count = self.vars[self.count_slot as usize].clone();
        let saved_has_next = self.vars[self.has_next_slot as usize].clone();
        let fslot = self.foreach_slot as usize;
        let previous = self.vars[fslot].clone();
        let id = self.next_scope;
        self.next_scope += 1;
        let (parent, replaced) = match &previous {
            Value::Scope(s) => (Some(s.clone()), Value::Null),
            Value::Null => (None, Value::Null),
            other => (None, other.clone()),
        };
        let scope = Rc::new(RefCell::new(Scope {
            id,
            index: -1,
            has_next: false,
            parent,
            replaced,
            storage: JMap::new(),
        }));
        self.vars[fslot] = Value::Scope(scope.clone());

        let mut peeked = it.next(self.file, f.span);
        let mut counter: usize = 1;
        let mut result: R<()> = Ok(());
        while let Some(item) = peeked.take() {
            if let Err(e) = self.step(f.span) {
                result = Err(e);
                break;
            }
            self.vars[self.count_slot as usize] = Value::Int(counter as i32);
            let value = match item {
                Ok(v) => v,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            peeked = it.next(self.file, f.span);
            let has_next = peeked.is_some();
            self.vars[self.has_next_slot as usize] = Value::Bool(has_next);
            self.vars[var] = value;
            {
                let mut s = scope.borrow_mut();
                s.index += 1;
                s.has_next = has_next;
            }
            match self.render_block(&f.body, out) {
                Ok(()) => {}
                Err(Ctl::Stop(Stop::Nearest)) => break,
                Err(Ctl::Stop(Stop::Scope(sid))) if sid == id => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            counter += 1;
            if counter > MAX_FOREACH {
                break;
            }
        }
        // clean(): restore the loop variable and counters, then the enclosing $foreach
        self.vars[var] = saved_var;
        self.vars[self.count_slot as usize] = saved_count;
        self.vars[self.has_next_slot as usize] = saved_has_next;
        let restore = match &self.vars[fslot] {
            Value::Scope(s) => {
                let s = s.borrow();
                match &s.parent {
                    Some(p) => Value::Scope(p.clone()),
                    None => s.get_replaced(),
                }
            }
            _ => previous,
        };
        self.vars[fslot] = restore;
        result
    }

    // ------------------------------------------------------------------ expressions

    /// An expression's value. The commonest case, a variable (`$name`), is handled here,
    /// inlined into the callers, so that its value is not passed back through memory.
    #[inline(always)]
    pub(crate) fn eval_value(&mut self, e: &Expr) -> R<Value> {
        if let Expr::Ref(r) = e
            && r.parts.is_empty()
            && !matches!(r.kind, RefKind::Runt | RefKind::NonComputable)
        {
            self.step(r.span)?;
            return Ok(self.vars[r.slot as usize].clone());
        }
        self.eval_expr(e)
    }

    #[inline(never)]
    fn eval_expr(&mut self, e: &Expr) -> R<Value> {
        Ok(match e {
            Expr::Str(s, id) => {
                let slot = &mut self.lits[*id as usize];
                match slot {
                    Some(r) => Value::Str(r.clone()),
                    None => {
                        let r: Rc<str> = Rc::from(&**s);
                        *slot = Some(r.clone());
                        Value::Str(r)
                    }
                }
            }
            Expr::Interp { body, strip, span } => {
                self.step(*span)?;
                // "$x" (one plain reference): the value's own string when it is one
                if *strip
                    && body.len() == 2
                    && let (Node::Ref(r), Node::Text(t)) = (&body[0], &body[1])
                    && &**t == " "
                    && !r.escaped
                    && r.esc_prefix.is_empty()
                    && r.more_prefix.is_empty()
                    && r.kind != RefKind::Runt
                {
                    self.step(r.span)?;
                    match self.execute_ref(r)? {
                        Value::Str(s) => return Ok(Value::Str(s)),
                        Value::Null => return Ok(Value::str(&r.null_string)),
                        _ => {}
                    }
                }
                let mut s = String::new();
                self.render_block(body, &mut s)?;
                if *strip {
                    s.pop();
                }
                Value::string(s)
            }
            Expr::Int(i) => Value::Int(*i),
            Expr::Long(i) => Value::Long(*i),
            Expr::BigInt(i) => Value::BigInt(Big::new(*i)),
            Expr::Double(d) => Value::Double(*d),
            Expr::True => Value::Bool(true),
            Expr::False => Value::Bool(false),
            // (a reference without parts is handled by eval_value)
            Expr::Ref(r) => {
                self.step(r.span)?;
                self.execute_ref(r)?
            }
            Expr::List(items) => {
                let mut v = Vec::with_capacity(items.len());
                for i in items {
                    v.push(self.eval_value(i)?);
                }
                Value::new_list(v)
            }
            Expr::Map(entries) => {
                let mut m = JMap::with_capacity(entries.len());
                for (k, v) in entries {
                    let k = self.eval_value(k)?;
                    let v = self.eval_value(v)?;
                    m.put(k, v);
                }
                Value::new_map(m)
            }
            Expr::Range { from, to, span, .. } => {
                let (a, b) = (self.eval_value(from)?, self.eval_value(to)?);
                if !a.is_number() || !b.is_number() {
                    return Ok(Value::Null);
                }
                let (l, r) = (java_int_value(&a) as i64, java_int_value(&b) as i64);
                let count = (l - r).abs() + 1;
                if count > MAX_RANGE {
                    return Err(err(
                        self.file,
                        *span,
                        format!("range [{}..{}] has more than {} elements", l, r, MAX_RANGE),
                    ));
                }
                let step = if l >= r { -1 } else { 1 };
                Value::new_list(
                    (0..count)
                        .map(|k| Value::Int((l + k * step) as i32))
                        .collect(),
                )
            }
            Expr::Group(inner, _) => self.eval_value(inner)?,
            Expr::Not(inner) => Value::Bool(!self.eval_bool(inner)?),
            Expr::Word => Value::Null,
            Expr::Binary {
                op,
                left,
                right,
                span,
                ..
            } => {
                self.step(*span)?;
                match op {
                    BinOp::Or
                    | BinOp::And
                    | BinOp::Eq
                    | BinOp::Ne
                    | BinOp::Lt
                    | BinOp::Gt
                    | BinOp::Le
                    | BinOp::Ge => Value::Bool(self.eval_bool(e)?),
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                        let l = self.eval_value(left)?;
                        let r = self.eval_value(right)?;
                        if *op == BinOp::Add
                            && (matches!(l, Value::Str(_)) || matches!(r, Value::Str(_)))
                        {
                            let mut s = String::new();
                            if l.is_null() {
                                s.push_str(&expr_literal(left));
                            } else {
                                write_java(&mut s, &l, 0).map_err(|m| err(self.file, *span, m))?;
                            }
                            if r.is_null() {
                                s.push_str(&expr_literal(right));
                            } else {
                                write_java(&mut s, &r, 0).map_err(|m| err(self.file, *span, m))?;
                            }
                            self.check_out(&s, *span)?;
                            return Ok(Value::string(s));
                        }
                        if !l.is_number() || !r.is_number() {
                            return Ok(Value::Null);
                        }
                        let mop = match op {
                            BinOp::Add => MathOp::Add,
                            BinOp::Sub => MathOp::Sub,
                            BinOp::Mul => MathOp::Mul,
                            BinOp::Div => MathOp::Div,
                            _ => MathOp::Mod,
                        };
                        math(mop, &l, &r).map_err(|m| err(self.file, *span, m))?
                    }
                }
            }
        })
    }

    /// Velocity's `evaluate()`: only references, booleans and logical/comparison nodes can
    /// be true; every other node (string literals, numbers, arithmetic...) is false.
    pub(crate) fn eval_bool(&mut self, e: &Expr) -> R<bool> {
        match e {
            Expr::Ref(r) => {
                self.step(r.span)?;
                let truth = |v: &Value| match v {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    _ => true,
                };
                if let Some(v) = self.plain_var(r) {
                    return Ok(truth(v));
                }
                // `$foreach.hasNext`, `$map.flag`: one property of a variable, read in place
                if let [RefPart::Property(name, span)] = &r.parts[..]
                    && !matches!(r.kind, RefKind::Runt | RefKind::NonComputable)
                {
                    if self.vars[r.slot as usize].is_null() {
                        return Ok(false);
                    }
                    self.step(*span)?;
                    return Ok(truth(&get_property(&self.vars[r.slot as usize], name)));
                }
                Ok(truth(&self.execute_ref(r)?))
            }
            Expr::True => Ok(true),
            Expr::Group(inner, _) => self.eval_bool(inner),
            Expr::Not(inner) => Ok(!self.eval_bool(inner)?),
            Expr::Binary {
                op,
                left,
                right,
                span,
                ..
            } => {
                self.step(*span)?;
                match op {
                    BinOp::Or => Ok(self.eval_bool(left)? || self.eval_bool(right)?),
                    BinOp::And => Ok(self.eval_bool(left)? && self.eval_bool(right)?),
                    BinOp::Eq | BinOp::Ne => {
                        let l = self.eval_value(left)?;
                        let r = self.eval_value(right)?;
                        let eq = self.velocity_equals(&l, &r, *span)?;
                        // ASTNENode is exactly the negation of ASTEQNode
                        Ok(if *op == BinOp::Eq { eq } else { !eq })
                    }
                    BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
                        let l = self.eval_value(left)?;
                        let r = self.eval_value(right)?;
                        if !l.is_number() || !r.is_number() {
                            return Ok(false);
                        }
                        let c = compare_numbers(&l, &r);
                        use std::cmp::Ordering::*;
                        Ok(match op {
                            BinOp::Lt => c == Less,
                            BinOp::Gt => c == Greater,
                            BinOp::Le => c != Greater,
                            _ => c != Less,
                        })
                    }
                    _ => Ok(false),
                }
            }
            _ => Ok(false),
        }
    }

    /// ASTEQNode: numbers by value; same class by equals(); otherwise by toString().
    fn velocity_equals(&mut self, l: &Value, r: &Value, span: Span) -> R<bool> {
        if l.is_number() && r.is_number() {
            return Ok(compare_numbers(l, r) == std::cmp::Ordering::Equal);
        }
        if !l.is_null() && !r.is_null() && l.class_id() == r.class_id() {
            return Ok(java_equals(l, r));
        }
        if l.is_null() && r.is_null() {
            return Ok(true);
        }
        if l.is_null() || r.is_null() {
            return Ok(false);
        }
        let ls = to_java_string(l).map_err(|m| err(self.file, span, m))?;
        let rs = to_java_string(r).map_err(|m| err(self.file, span, m))?;
        Ok(ls == rs)
    }

    // ------------------------------------------------------------------ Java members

    fn call_method(&mut self, cur: &Value, name: &str, args: &[Value], span: Span) -> R<Call> {
        let file = self.file;
        let fail = |m: String| {
            err(
                file,
                span,
                format!("invocation of method '{}' failed: {}", name, m),
            )
        };
        let r = match cur {
            Value::Str(s) => string_method(s, name, args).map_err(fail)?,
            Value::Map(m) => map_method(cur, m, name, args).map_err(fail)?,
            Value::List(l) => list_method(cur, l, name, args).map_err(fail)?,
            Value::Entry(e) => match (name, args) {
                ("getKey", []) => Call::Value(e.0.clone()),
                ("getValue", []) => Call::Value(e.1.clone()),
                ("toString", []) => Call::Value(Value::string(
                    to_java_string(cur).map_err(fail)?.into_owned(),
                )),
                ("equals", [o]) => Call::Value(Value::Bool(java_equals(cur, o))),
                _ => Call::NoMethod,
            },
            Value::Scope(s) => scope_method(cur, s, name, args).map_err(fail)?,
            Value::Int(_) | Value::Long(_) | Value::BigInt(_) | Value::Double(_) => {
                number_method(cur, name, args)
            }
            Value::Bool(b) => match (name, args) {
                ("toString", []) => Call::Value(Value::str(if *b { "true" } else { "false" })),
                ("booleanValue", []) => Call::Value(Value::Bool(*b)),
                ("equals", [o]) => Call::Value(Value::Bool(java_equals(cur, o))),
                _ => Call::NoMethod,
            },
            Value::Host(h) => match h.call(name, args).map_err(fail)? {
                Some(v) => Call::Value(v),
                None => Call::NoMethod,
            },
            Value::Null => Call::NoMethod,
        };
        if let Call::Value(Value::Str(s)) = &r {
            self.check_out(s, span)?;
        }
        Ok(r)
    }
}

/// A property (`$x.name`): a map entry, a `$foreach` field, a getter.
fn get_property(cur: &Value, name: &str) -> Value {
    match cur {
        Value::Map(m) => m.borrow().get_str(name).cloned().unwrap_or(Value::Null),
        Value::Scope(s) => match name {
            "index" => Value::Int(s.borrow().index),
            "count" => Value::Int(s.borrow().index.wrapping_add(1)),
            "hasNext" => Value::Bool(s.borrow().has_next),
            "first" => Value::Bool(s.borrow().index < 1),
            "last" => Value::Bool(!s.borrow().has_next),
            "parent" => s
                .borrow()
                .parent
                .clone()
                .map(Value::Scope)
                .unwrap_or(Value::Null),
            "topmost" => Value::Scope(Scope::topmost(s)),
            "replaced" => s.borrow().get_replaced(),
            _ => s.borrow().get(&Value::str(name)),
        },
        Value::Entry(e) => match name {
            "key" => e.0.clone(),
            "value" => e.1.clone(),
            _ => Value::Null,
        },
        Value::Str(s) => match name {
            "empty" => Value::Bool(s.is_empty()),
            _ => Value::Null,
        },
        Value::List(l) => match name {
            "empty" => Value::Bool(l.borrow().items.is_empty()),
            _ => Value::Null,
        },
        Value::Host(h) => h.property(name).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Velocity's literal() of an expression node, for `null + "string"`.
fn expr_literal(e: &Expr) -> String {
    match e {
        Expr::Ref(r) => r.literal.to_string(),
        Expr::Binary { literal, .. } | Expr::Range { literal, .. } | Expr::Group(_, literal) => {
            literal.to_string()
        }
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------- strings

fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

/// Byte offset of UTF-16 index `idx` (None when it is past the end or inside a pair).
fn utf16_to_byte(s: &str, idx: usize) -> Option<usize> {
    if s.is_ascii() {
        return if idx <= s.len() { Some(idx) } else { None };
    }
    let mut u = 0;
    for (b, c) in s.char_indices() {
        if u == idx {
            return Some(b);
        }
        u += c.len_utf16();
        if u > idx {
            return None;
        }
    }
    if u == idx { Some(s.len()) } else { None }
}

fn byte_to_utf16(s: &str, b: usize) -> usize {
    utf16_len(&s[..b])
}

fn bounds(s: &str, begin: i32, end: i32) -> Result<(usize, usize), String> {
    let len = utf16_len(s) as i64;
    if begin < 0 || end as i64 > len || begin > end {
        return Err(format!(
            "StringIndexOutOfBoundsException: begin {}, end {}, length {}",
            begin, end, len
        ));
    }
    let b = utf16_to_byte(s, begin as usize).ok_or("substring splits a surrogate pair")?;
    let e = utf16_to_byte(s, end as usize).ok_or("substring splits a surrogate pair")?;
    Ok((b, e))
}

fn npe() -> String {
    "NullPointerException".to_string()
}

fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn java_hash(s: &str) -> i32 {
    let mut h: i32 = 0;
    for u in s.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(u as i32);
    }
    h
}

fn java_compare(a: &str, b: &str) -> i32 {
    let mut ia = a.encode_utf16();
    let mut ib = b.encode_utf16();
    loop {
        match (ia.next(), ib.next()) {
            (Some(x), Some(y)) if x != y => return x as i32 - y as i32,
            (Some(_), Some(_)) => continue,
            _ => return utf16_len(a) as i32 - utf16_len(b) as i32,
        }
    }
}

fn index_of(s: &str, needle: &str, from: i32) -> i32 {
    let len = utf16_len(s) as i32;
    let from = from.max(0);
    if from > len {
        return if needle.is_empty() { len } else { -1 };
    }
    // find the first char boundary at or after `from` (UTF-16)
    let mut start_b = None;
    let mut u = 0i32;
    for (b, c) in s.char_indices() {
        if u >= from {
            start_b = Some(b);
            break;
        }
        u += c.len_utf16() as i32;
    }
    let start_b = start_b.unwrap_or(s.len());
    match s[start_b..].find(needle) {
        Some(i) => byte_to_utf16(s, start_b + i) as i32,
        None => -1,
    }
}

fn string_method(s: &Rc<str>, name: &str, args: &[Value]) -> Result<Call, String> {
    use Value as V;
    let v = |x: Value| Ok(Call::Value(x));
    match (name, args) {
        ("length", []) => v(V::Int(utf16_len(s) as i32)),
        ("isEmpty", []) => v(V::Bool(s.is_empty())),
        ("toString", []) | ("intern", []) => v(V::Str(s.clone())),
        ("equals", [o]) => v(V::Bool(matches!(o, V::Str(t) if t == s))),
        ("equalsIgnoreCase", [V::Str(t)]) => v(V::Bool(
            s.chars().count() == t.chars().count()
                && s.chars().zip(t.chars()).all(|(a, b)| {
                    a == b
                        || a.to_uppercase().eq(b.to_uppercase())
                        || a.to_lowercase().eq(b.to_lowercase())
                }),
        )),
        ("equalsIgnoreCase", [V::Null]) => v(V::Bool(false)),
        ("hashCode", []) => v(V::Int(java_hash(s))),
        ("compareTo", [V::Str(t)]) => v(V::Int(java_compare(s, t))),
        ("contains", [V::Str(t)]) => v(V::Bool(s.contains(&**t))),
        ("startsWith", [V::Str(t)]) => v(V::Bool(s.starts_with(&**t))),
        ("startsWith", [V::Str(t), V::Int(off)]) => {
            let ok = *off >= 0
                && utf16_to_byte(s, *off as usize).is_some_and(|b| s[b..].starts_with(&**t));
            v(V::Bool(ok))
        }
        ("endsWith", [V::Str(t)]) => v(V::Bool(s.ends_with(&**t))),
        ("indexOf", [V::Str(t)]) => v(V::Int(index_of(s, t, 0))),
        ("indexOf", [V::Str(t), V::Int(from)]) => v(V::Int(index_of(s, t, *from))),
        ("indexOf", [V::Int(ch)]) => {
            let c = char::from_u32(*ch as u32)
                .map(|c| c.to_string())
                .unwrap_or_default();
            v(V::Int(if c.is_empty() { -1 } else { index_of(s, &c, 0) }))
        }
        ("lastIndexOf", [V::Str(t)]) => v(V::Int(
            s.rfind(&**t)
                .map(|b| byte_to_utf16(s, b) as i32)
                .unwrap_or(-1),
        )),
        ("substring", [V::Int(b)]) => {
            let (bb, eb) = bounds(s, *b, utf16_len(s) as i32)?;
            v(V::str(&s[bb..eb]))
        }
        ("substring", [V::Int(b), V::Int(e)]) => {
            let (bb, eb) = bounds(s, *b, *e)?;
            v(V::str(&s[bb..eb]))
        }
        ("charAt", [V::Int(i)]) => {
            let (bb, eb) = bounds(s, *i, i.saturating_add(1)).map_err(|_| {
                format!(
                    "StringIndexOutOfBoundsException: index {}, length {}",
                    i,
                    utf16_len(s)
                )
            })?;
            v(V::str(&s[bb..eb]))
        }
        ("toLowerCase", []) => v(V::string(s.to_lowercase())),
        ("toUpperCase", []) => v(V::string(s.to_uppercase())),
        ("trim", []) => v(V::str(java_trim(s))),
        ("concat", [V::Str(t)]) => v(V::string(format!("{}{}", s, t))),
        ("replace", [V::Str(a), V::Str(b)]) => {
            if a.is_empty() {
                // Java inserts the replacement between every UTF-16 unit
                let mut out = String::with_capacity(s.len() + (s.len() + 1) * b.len());
                out.push_str(b);
                for c in s.chars() {
                    out.push(c);
                    out.push_str(b);
                }
                check_size(&out)?;
                v(V::string(out))
            } else {
                if !s.is_empty() && b.len() > a.len() {
                    let n = s.matches(&**a).count();
                    if s.len() + n * (b.len() - a.len()) > MAX_STRING {
                        return Err(format!("string longer than {} bytes", MAX_STRING));
                    }
                }
                v(V::string(s.replace(&**a, b)))
            }
        }
        ("replaceAll", [V::Str(re), V::Str(rep)]) => {
            match javaregex::replace_opt(s, re, rep, false)? {
                Some(r) => v(V::string(r)),
                None => v(V::Str(s.clone())),
            }
        }
        ("replaceFirst", [V::Str(re), V::Str(rep)]) => {
            match javaregex::replace_opt(s, re, rep, true)? {
                Some(r) => v(V::string(r)),
                None => v(V::Str(s.clone())),
            }
        }
        ("matches", [V::Str(re)]) => v(V::Bool(javaregex::matches(re, s)?)),
        ("split", [V::Str(re)]) => v(V::new_list_of(
            ListKind::Array,
            javaregex::split(s, re, 0)?
                .into_iter()
                .map(V::string)
                .collect(),
        )),
        ("split", [V::Str(re), V::Int(limit)]) => v(V::new_list_of(
            ListKind::Array,
            javaregex::split(s, re, *limit)?
                .into_iter()
                .map(V::string)
                .collect(),
        )),
        // a null where Java wants an object: NullPointerException
        (
            "contains" | "startsWith" | "endsWith" | "indexOf" | "lastIndexOf" | "concat"
            | "compareTo" | "matches" | "split",
            [V::Null, ..],
        )
        | ("replace" | "replaceAll" | "replaceFirst", [V::Null, _] | [_, V::Null]) => Err(npe()),
        _ => Ok(Call::NoMethod),
    }
}

// ---------------------------------------------------------------------- maps, lists

fn map_method(
    this: &Value,
    m: &Rc<RefCell<JMap>>,
    name: &str,
    args: &[Value],
) -> Result<Call, String> {
    use Value as V;
    let v = |x: Value| Ok(Call::Value(x));
    match (name, args) {
        ("get", [k]) => v(m.borrow().get(k).cloned().unwrap_or(V::Null)),
        ("getOrDefault", [k, d]) => {
            let m = m.borrow();
            v(if m.contains_key(k) {
                m.get(k).cloned().unwrap_or(V::Null)
            } else {
                d.clone()
            })
        }
        ("containsKey", [k]) => v(V::Bool(m.borrow().contains_key(k))),
        ("containsValue", [x]) => v(V::Bool(
            m.borrow().entries().iter().any(|(_, y)| java_equals(x, y)),
        )),
        ("size", []) => v(V::Int(m.borrow().len() as i32)),
        ("isEmpty", []) => v(V::Bool(m.borrow().is_empty())),
        ("keySet", []) => v(V::new_list_of(
            ListKind::View,
            m.borrow()
                .entries()
                .iter()
                .map(|(k, _)| k.clone())
                .collect(),
        )),
        ("values", []) => v(V::new_list_of(
            ListKind::View,
            m.borrow()
                .entries()
                .iter()
                .map(|(_, x)| x.clone())
                .collect(),
        )),
        ("entrySet", []) => v(V::new_list_of(
            ListKind::View,
            m.borrow()
                .entries()
                .iter()
                .map(|(k, x)| V::Entry(Rc::new((k.clone(), x.clone()))))
                .collect(),
        )),
        ("put", [k, x]) => {
            let old = m.borrow_mut().put(k.clone(), x.clone());
            v(old)
        }
        ("remove", [k]) => {
            let old = m.borrow_mut().remove(k);
            v(old)
        }
        ("clear", []) => {
            m.borrow_mut().clear();
            v(V::str(""))
        }
        ("putAll", [V::Map(o)]) => {
            let entries: Vec<(Value, Value)> = o.borrow().entries().to_vec();
            let mut mm = m.borrow_mut();
            for (k, x) in entries {
                mm.put(k, x);
            }
            v(V::str(""))
        }
        ("toString", []) => v(V::string(to_java_string(this)?.into_owned())),
        ("equals", [o]) => v(V::Bool(java_equals(this, o))),
        _ => Ok(Call::NoMethod),
    }
}

fn list_method(
    this: &Value,
    l: &Rc<RefCell<JList>>,
    name: &str,
    args: &[Value],
) -> Result<Call, String> {
    use Value as V;
    let v = |x: Value| Ok(Call::Value(x));
    let oob = |i: i32, n: usize| {
        Err(format!(
            "IndexOutOfBoundsException: Index {} out of bounds for length {}",
            i, n
        ))
    };
    let kind = l.borrow().kind;
    let unsupported = || Err("UnsupportedOperationException".to_string());
    match (name, args) {
        ("size", []) => v(V::Int(l.borrow().items.len() as i32)),
        ("isEmpty", []) => v(V::Bool(l.borrow().items.is_empty())),
        ("get", [V::Int(i)]) if kind != ListKind::View => {
            let l = l.borrow();
            if *i < 0 || *i as usize >= l.items.len() {
                return oob(*i, l.items.len());
            }
            v(l.items[*i as usize].clone())
        }
        ("contains", [x]) => v(V::Bool(l.borrow().items.iter().any(|y| java_equals(x, y)))),
        ("indexOf", [x]) if kind != ListKind::View => v(V::Int(
            l.borrow()
                .items
                .iter()
                .position(|y| java_equals(x, y))
                .map(|i| i as i32)
                .unwrap_or(-1),
        )),
        ("add", [_]) | ("add", [V::Int(_), _]) if kind != ListKind::ArrayList => unsupported(),
        ("add", [x]) => {
            let mut l = l.borrow_mut();
            l.items.push(x.clone());
            l.mod_count += 1;
            v(V::Bool(true))
        }
        ("add", [V::Int(i), x]) => {
            let mut l = l.borrow_mut();
            if *i < 0 || *i as usize > l.items.len() {
                return oob(*i, l.items.len());
            }
            l.items.insert(*i as usize, x.clone());
            l.mod_count += 1;
            v(V::str(""))
        }
        ("set", [V::Int(i), x]) if kind != ListKind::View => {
            let mut l = l.borrow_mut();
            if *i < 0 || *i as usize >= l.items.len() {
                return oob(*i, l.items.len());
            }
            v(std::mem::replace(&mut l.items[*i as usize], x.clone()))
        }
        ("clear", []) if kind == ListKind::ArrayList => {
            let mut l = l.borrow_mut();
            l.items.clear();
            l.mod_count += 1;
            v(V::str(""))
        }
        ("clear", []) if kind == ListKind::Array => unsupported(),
        ("toString", []) => v(V::string(to_java_string(this)?.into_owned())),
        ("equals", [o]) => v(V::Bool(java_equals(this, o))),
        _ => Ok(Call::NoMethod),
    }
}

fn scope_method(
    this: &Value,
    s: &Rc<RefCell<Scope>>,
    name: &str,
    args: &[Value],
) -> Result<Call, String> {
    use Value as V;
    let v = |x: Value| Ok(Call::Value(x));
    match (name, args) {
        ("getIndex", []) => v(V::Int(s.borrow().index)),
        ("getCount", []) => v(V::Int(s.borrow().index.wrapping_add(1))),
        ("hasNext", []) | ("getHasNext", []) => v(V::Bool(s.borrow().has_next)),
        ("isFirst", []) | ("getFirst", []) => v(V::Bool(s.borrow().index < 1)),
        ("isLast", []) | ("getLast", []) => v(V::Bool(!s.borrow().has_next)),
        ("getParent", []) => v(s.borrow().parent.clone().map(V::Scope).unwrap_or(V::Null)),
        ("getTopmost", []) => v(V::Scope(Scope::topmost(s))),
        ("getReplaced", []) => v(s.borrow().get_replaced()),
        ("get", [k]) => v(s.borrow().get(k)),
        ("put", [k, x]) => {
            let old = s.borrow_mut().storage.put(k.clone(), x.clone());
            v(old)
        }
        ("containsKey", [k]) => v(V::Bool(s.borrow().storage.contains_key(k))),
        ("size", []) => v(V::Int(s.borrow().storage.len() as i32)),
        ("isEmpty", []) => v(V::Bool(s.borrow().storage.is_empty())),
        ("keySet", []) => v(V::new_list_of(
            ListKind::View,
            s.borrow()
                .storage
                .entries()
                .iter()
                .map(|(k, _)| k.clone())
                .collect(),
        )),
        ("values", []) => v(V::new_list_of(
            ListKind::View,
            s.borrow()
                .storage
                .entries()
                .iter()
                .map(|(_, x)| x.clone())
                .collect(),
        )),
        ("entrySet", []) => v(V::new_list_of(
            ListKind::View,
            s.borrow()
                .storage
                .entries()
                .iter()
                .map(|(k, x)| V::Entry(Rc::new((k.clone(), x.clone()))))
                .collect(),
        )),
        ("toString", []) => v(V::string(to_java_string(this)?.into_owned())),
        ("equals", [o]) => v(V::Bool(java_equals(this, o))),
        _ => Ok(Call::NoMethod),
    }
}

fn number_method(this: &Value, name: &str, args: &[Value]) -> Call {
    use Value as V;
    match (name, args) {
        ("toString", []) => Call::Value(V::string(
            to_java_string(this)
                .map(|s| s.into_owned())
                .unwrap_or_default(),
        )),
        ("intValue", []) => Call::Value(V::Int(java_int_value(this))),
        ("longValue", []) => Call::Value(V::Long(as_i64(this))),
        ("doubleValue", []) => Call::Value(V::Double(as_f64(this))),
        ("equals", [o]) => Call::Value(V::Bool(java_equals(this, o))),
        ("compareTo", [o]) if o.class_id() == this.class_id() => {
            Call::Value(V::Int(compare_numbers(this, o) as i32))
        }
        _ => Call::NoMethod,
    }
}
