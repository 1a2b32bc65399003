//! Run-time values with the Java semantics Velocity gives them: `Integer`, `Long`,
//! `BigInteger`, `Double`, `String`, `Boolean`, `ArrayList`, `LinkedHashMap`, map entries,
//! `#foreach` scopes, and host objects (API Gateway's `$input`, `$util`).
//!
//! Lists and maps are shared and mutable (Java reference semantics).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

/// Deepest nesting of lists/maps that `toString` and `equals` walk.
pub const MAX_VALUE_DEPTH: usize = 100;

#[derive(Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    /// java.lang.Integer
    Int(i32),
    /// java.lang.Long
    Long(i64),
    /// java.math.BigInteger (limited to 128 bits here)
    BigInt(Big),
    /// java.lang.Double
    Double(f64),
    Str(Rc<str>),
    List(Rc<RefCell<JList>>),
    Map(Rc<RefCell<JMap>>),
    Entry(Rc<(Value, Value)>),
    Scope(Rc<RefCell<Scope>>),
    Host(Rc<dyn HostObject>),
}

/// Written out (rather than derived) to be inlined: values are cloned on every variable
/// read, and an out-of-line clone hands its result back through memory.
impl Clone for Value {
    #[inline(always)]
    fn clone(&self) -> Value {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Long(i) => Value::Long(*i),
            Value::BigInt(i) => Value::BigInt(*i),
            Value::Double(d) => Value::Double(*d),
            Value::Str(s) => Value::Str(s.clone()),
            Value::List(l) => Value::List(l.clone()),
            Value::Map(m) => Value::Map(m.clone()),
            Value::Entry(e) => Value::Entry(e.clone()),
            Value::Scope(s) => Value::Scope(s.clone()),
            Value::Host(h) => Value::Host(h.clone()),
        }
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match to_java_string(self) {
            Ok(s) => write!(f, "{}", s),
            Err(_) => write!(f, "<value>"),
        }
    }
}

/// An `i128` kept with 8-byte alignment: a bare `i128` (16-byte aligned) would make every
/// [`Value`] 32 bytes instead of 24, and values are moved and returned all the time while
/// BigIntegers are rare.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Big([u64; 2]);

impl Big {
    pub fn new(i: i128) -> Big {
        Big([i as u64, (i >> 64) as u64])
    }

    pub fn get(self) -> i128 {
        ((self.0[1] as i128) << 64) | self.0[0] as i128
    }
}

/// An object supplied by the host (API Gateway's `$input` and `$util`).
pub trait HostObject {
    /// Java class name, for toString.
    fn class_name(&self) -> &str;
    /// Calls a method. `Ok(None)`: no such method (Velocity then yields null).
    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String>;
    /// A bean property (`getFoo()`), or None.
    fn property(&self, name: &str) -> Option<Value>;
    /// True when this object is `$util`, whose `escapeJavaScript(x).replaceAll("\\'","'")`
    /// the renderer evaluates in one step with [`HostObject::escape_js_keep_quote_into`]
    /// (for a string `x`; null gives null as `escapeJavaScript(null)` does).
    fn fuses_escape_js(&self) -> bool {
        false
    }
    /// `escapeJavaScript(s).replaceAll("\\'","'")` appended to `out`; false (nothing
    /// appended) when that is `s` itself. Called only when `fuses_escape_js()`.
    fn escape_js_keep_quote_into(&self, _s: &str, _out: &mut String) -> bool {
        false
    }
}

/// Per-thread shared copies of the short strings of request data (header names, context
/// names and values), which repeat from render to render.
pub struct StrCache {
    /// the strings of the previous render's request data, by position
    shape: Vec<Rc<str>>,
    /// position of the next [`StrCache::shaped`] string in this render
    pos: usize,
    /// a bounded interning set
    intern: std::collections::HashSet<Rc<str>, FxBuild>,
}

thread_local! {
    static STR_CACHE: RefCell<StrCache> = const {
        RefCell::new(StrCache {
            shape: Vec::new(),
            pos: 0,
            intern: std::collections::HashSet::with_hasher(FxBuild),
        })
    };
}

/// Runs `f` with this thread's string cache, starting a new pass of [`StrCache::shaped`]
/// strings (one pass per render). The cache is borrowed once for the whole pass rather than
/// once per string. `f` must not call `with_str_cache` itself.
pub fn with_str_cache<R>(f: impl FnOnce(&mut StrCache) -> R) -> R {
    STR_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.pos = 0;
        f(&mut c)
    })
}

impl StrCache {
    /// A copy of `s`, shared with the string at the same position of the previous render's
    /// request data when they are equal (request shapes repeat: the same context names,
    /// header names and often values), else from the interning set. Only the text matters:
    /// a hit is checked by comparing it. (Returned as `Rc<str>`, which comes back in
    /// registers, rather than as a `Value`, which would come back through memory.)
    pub fn shaped(&mut self, s: &str) -> Rc<str> {
        if s.len() > 256 {
            return Rc::from(s);
        }
        let i = self.pos;
        self.pos += 1;
        if let Some(prev) = self.shape.get(i)
            && &**prev == s
        {
            return prev.clone();
        }
        let r = self.interned(s);
        if i < self.shape.len() {
            self.shape[i] = r.clone();
        } else if i == self.shape.len() && i < 4096 {
            self.shape.push(r.clone());
        }
        r
    }

    /// A shared copy of a short string from the bounded interning set.
    pub fn interned(&mut self, s: &str) -> Rc<str> {
        if s.len() > 256 {
            return Rc::from(s);
        }
        if let Some(a) = self.intern.get(s) {
            return a.clone();
        }
        if self.intern.len() >= 4096 {
            self.intern.clear();
        }
        let a: Rc<str> = Rc::from(s);
        self.intern.insert(a.clone());
        a
    }
}

/// What Java class a list value stands for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// java.util.ArrayList (list literals, ranges, JSON arrays)
    #[default]
    ArrayList,
    /// a Java array (String.split), seen through Velocity's ArrayListWrapper: fixed size
    Array,
    /// a map's keySet(), values() or entrySet() view: no get(), no add()
    View,
}

/// java.util.ArrayList, an array, or a collection view
#[derive(Debug, Default)]
pub struct JList {
    pub items: Vec<Value>,
    pub mod_count: u64,
    pub kind: ListKind,
}

/// A small fast hasher (FxHash) for the map index: keys are short strings.
#[derive(Default, Clone, Copy)]
pub struct FxBuild;

pub struct FxHasher(u64);

impl std::hash::BuildHasher for FxBuild {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
        self.0 = h;
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// java.util.LinkedHashMap: insertion-ordered; putting an existing key keeps its place.
///
/// String keys get a hash index, built lazily once a large map has been searched often.
#[derive(Default)]
pub struct JMap {
    entries: Vec<(Value, Value)>,
    index: std::cell::OnceCell<HashMap<Rc<str>, usize, FxBuild>>,
    scans: std::cell::Cell<u32>,
    pub mod_count: u64,
}

const INDEX_THRESHOLD: usize = 16;
const SCANS_BEFORE_INDEX: u32 = 8;
/// Largest map [`JMap::position`] first scans for the key's own pointer.
const POINTER_SCAN_MAX: usize = 64;

impl JMap {
    pub fn new() -> JMap {
        JMap::default()
    }

    pub fn with_capacity(n: usize) -> JMap {
        JMap {
            entries: Vec::with_capacity(n),
            ..JMap::default()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }

    fn str_position(&self, key: &str) -> Option<usize> {
        if let Some(ix) = self.index.get() {
            return ix.get(key).copied();
        }
        if self.entries.len() > INDEX_THRESHOLD {
            let n = self.scans.get() + 1;
            self.scans.set(n);
            if n > SCANS_BEFORE_INDEX {
                let ix = self.index.get_or_init(|| {
                    let mut ix = HashMap::with_capacity_and_hasher(self.entries.len(), FxBuild);
                    for (i, (k, _)) in self.entries.iter().enumerate() {
                        if let Value::Str(s) = k {
                            ix.entry(s.clone()).or_insert(i);
                        }
                    }
                    ix
                });
                return ix.get(key).copied();
            }
        }
        self.entries
            .iter()
            .position(|(k, _)| matches!(k, Value::Str(s) if &**s == key))
    }

    fn position(&self, key: &Value) -> Option<usize> {
        if let Value::Str(k) = key {
            // A key taken from this map (`keySet()`, then `get($name)`) is often the very
            // string stored: in a small map without an index, a scan of pointers finds it
            // without comparing text. String keys are unique by content, so the entry holding
            // the same string is the one a content search would find.
            if self.entries.len() <= POINTER_SCAN_MAX
                && self.index.get().is_none()
                && let Some(i) = self
                    .entries
                    .iter()
                    .position(|(e, _)| matches!(e, Value::Str(s) if Rc::ptr_eq(s, k)))
            {
                return Some(i);
            }
            return self.str_position(k);
        }
        self.entries.iter().position(|(k, _)| java_equals(k, key))
    }

    pub fn get(&self, key: &Value) -> Option<&Value> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    pub fn get_str(&self, key: &str) -> Option<&Value> {
        self.str_position(key).map(|i| &self.entries[i].1)
    }

    pub fn contains_key(&self, key: &Value) -> bool {
        self.position(key).is_some()
    }

    /// Map.put: returns the previous value (Null if none).
    pub fn put(&mut self, key: Value, value: Value) -> Value {
        if let Some(i) = self.position(&key) {
            return std::mem::replace(&mut self.entries[i].1, value);
        }
        self.mod_count += 1;
        if let (Value::Str(k), Some(ix)) = (&key, self.index.get_mut()) {
            ix.insert(k.clone(), self.entries.len());
        }
        self.entries.push((key, value));
        Value::Null
    }

    /// Appends an entry whose key is known to be absent (building maps from unique keys).
    pub fn push_unique(&mut self, key: Value, value: Value) {
        debug_assert!(self.index.get().is_none());
        self.entries.push((key, value));
    }

    pub fn remove(&mut self, key: &Value) -> Value {
        match self.position(key) {
            Some(i) => {
                self.mod_count += 1;
                let (_, v) = self.entries.remove(i);
                self.index = std::cell::OnceCell::new();
                self.scans.set(0);
                v
            }
            None => Value::Null,
        }
    }

    pub fn clear(&mut self) {
        self.mod_count += 1;
        self.entries.clear();
        self.index = std::cell::OnceCell::new();
        self.scans.set(0);
    }
}

/// A `#foreach` scope (`$foreach`): Velocity's ForeachScope, which is also a Map.
pub struct Scope {
    pub id: u64,
    pub index: i32,
    pub has_next: bool,
    pub parent: Option<Rc<RefCell<Scope>>>,
    pub replaced: Value,
    pub storage: JMap,
}

impl Scope {
    /// Scope.get(key): own storage, then the parent's.
    pub fn get(&self, key: &Value) -> Value {
        if let Some(v) = self.storage.get(key) {
            if !v.is_null() {
                return v.clone();
            }
            return Value::Null;
        }
        match &self.parent {
            Some(p) => p.borrow().get(key),
            None => Value::Null,
        }
    }

    pub fn get_replaced(&self) -> Value {
        if self.replaced.is_null()
            && let Some(p) = &self.parent
        {
            return p.borrow().get_replaced();
        }
        self.replaced.clone()
    }

    pub fn topmost(this: &Rc<RefCell<Scope>>) -> Rc<RefCell<Scope>> {
        let mut cur = this.clone();
        loop {
            let next = cur.borrow().parent.clone();
            match next {
                Some(p) => cur = p,
                None => return cur,
            }
        }
    }
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn string(s: String) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn new_list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(RefCell::new(JList {
            items,
            mod_count: 0,
            kind: ListKind::ArrayList,
        })))
    }

    pub fn new_list_of(kind: ListKind, items: Vec<Value>) -> Value {
        Value::List(Rc::new(RefCell::new(JList {
            items,
            mod_count: 0,
            kind,
        })))
    }

    pub fn new_map(m: JMap) -> Value {
        Value::Map(Rc::new(RefCell::new(m)))
    }

    pub fn is_number(&self) -> bool {
        matches!(
            self,
            Value::Int(_) | Value::Long(_) | Value::BigInt(_) | Value::Double(_)
        )
    }

    /// Velocity's "class" of a value, for the `isAssignableFrom` test in `==`.
    pub fn class_id(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Long(_) => 3,
            Value::BigInt(_) => 4,
            Value::Double(_) => 5,
            Value::Str(_) => 6,
            Value::List(l) => match l.try_borrow().map(|l| l.kind) {
                Ok(ListKind::ArrayList) | Err(_) => 7,
                Ok(ListKind::Array) => 12,
                Ok(ListKind::View) => 13,
            },
            Value::Map(_) => 8,
            Value::Entry(_) => 9,
            Value::Scope(_) => 10,
            Value::Host(_) => 11,
        }
    }
}

// ---------------------------------------------------------------------- toString

/// Java's `String.valueOf(value)` (maps as `{k=v}`, lists as `[a, b]`).
pub fn to_java_string(v: &Value) -> Result<std::borrow::Cow<'_, str>, String> {
    use std::borrow::Cow;
    Ok(match v {
        Value::Str(s) => Cow::Borrowed(&**s),
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Long(i) => Cow::Owned(i.to_string()),
        Value::BigInt(i) => Cow::Owned(i.get().to_string()),
        Value::Double(d) => Cow::Owned(java_double_to_string(*d)),
        _ => {
            let mut s = String::new();
            write_java(&mut s, v, 0)?;
            Cow::Owned(s)
        }
    })
}

/// Appends `String.valueOf(v)` to `out`.
pub fn write_java(out: &mut String, v: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("value nested too deeply to print".to_string());
    }
    match v {
        Value::Str(s) => out.push_str(s),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{}", i);
        }
        Value::Long(i) => {
            let _ = write!(out, "{}", i);
        }
        Value::BigInt(i) => {
            let _ = write!(out, "{}", i.get());
        }
        Value::Double(d) => out.push_str(&java_double_to_string(*d)),
        Value::List(l) => {
            let l = l.try_borrow().map_err(|_| "list in use".to_string())?;
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if same_object(item, v) {
                    out.push_str("(this Collection)");
                    continue;
                }
                write_java(out, item, depth + 1)?;
                check_size(out)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            let m = m.try_borrow().map_err(|_| "map in use".to_string())?;
            write_map(out, &m, v, depth)?;
        }
        Value::Entry(e) => {
            write_java(out, &e.0, depth + 1)?;
            out.push('=');
            write_java(out, &e.1, depth + 1)?;
        }
        Value::Scope(s) => {
            let s = s.try_borrow().map_err(|_| "scope in use".to_string())?;
            write_map(out, &s.storage, v, depth)?;
        }
        Value::Host(h) => {
            out.push_str(h.class_name());
        }
    }
    Ok(())
}

fn same_object(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => Rc::ptr_eq(x, y),
        (Value::Scope(x), Value::Scope(y)) => Rc::ptr_eq(x, y),
        (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

fn write_map(out: &mut String, m: &JMap, this: &Value, depth: usize) -> Result<(), String> {
    out.push('{');
    for (i, (k, val)) in m.entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if same_object(k, this) {
            out.push_str("(this Map)");
        } else {
            write_java(out, k, depth + 1)?;
        }
        out.push('=');
        if same_object(val, this) {
            out.push_str("(this Map)");
        } else {
            write_java(out, val, depth + 1)?;
        }
        check_size(out)?;
    }
    out.push('}');
    Ok(())
}

/// Largest string a template may build (output included).
pub const MAX_STRING: usize = 16 * 1024 * 1024;

pub fn check_size(s: &str) -> Result<(), String> {
    if s.len() > MAX_STRING {
        Err(format!("string longer than {} bytes", MAX_STRING))
    } else {
        Ok(())
    }
}

/// Java's `Double.toString(double)`.
pub fn java_double_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // shortest round-trip digits and exponent
    let e = format!("{:e}", d.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let neg = if d < 0.0 { "-" } else { "" };
    let a = d.abs();
    if (1e-3..1e7).contains(&a) {
        // plain notation
        let mut s = String::new();
        if exp >= 0 {
            let int_len = (exp + 1) as usize;
            if digits.len() <= int_len {
                s.push_str(&digits);
                for _ in digits.len()..int_len {
                    s.push('0');
                }
                s.push_str(".0");
            } else {
                s.push_str(&digits[..int_len]);
                s.push('.');
                s.push_str(&digits[int_len..]);
            }
        } else {
            s.push_str("0.");
            for _ in 0..(-exp - 1) {
                s.push('0');
            }
            s.push_str(&digits);
        }
        format!("{}{}", neg, s)
    } else {
        let frac = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{}{}.{}E{}", neg, &digits[..1], frac, exp)
    }
}

// ---------------------------------------------------------------------- equality

/// Java's `a.equals(b)` for the values a template can hold.
pub fn java_equals(a: &Value, b: &Value) -> bool {
    java_equals_d(a, b, 0)
}

fn java_equals_d(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_VALUE_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Long(x), Value::Long(y)) => x == y,
        (Value::BigInt(x), Value::BigInt(y)) => x == y,
        (Value::Double(x), Value::Double(y)) => {
            // Double.equals compares doubleToLongBits (NaN equals NaN, 0.0 != -0.0)
            let cx = if x.is_nan() {
                f64::NAN.to_bits()
            } else {
                x.to_bits()
            };
            let cy = if y.is_nan() {
                f64::NAN.to_bits()
            } else {
                y.to_bits()
            };
            cx == cy
        }
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            if Rc::ptr_eq(x, y) {
                return true;
            }
            let (Ok(x), Ok(y)) = (x.try_borrow(), y.try_borrow()) else {
                return false;
            };
            let x_set = x.kind == ListKind::View;
            let y_set = y.kind == ListKind::View;
            if x_set != y_set {
                return false;
            }
            if x_set {
                return x.items.len() == y.items.len()
                    && y.items
                        .iter()
                        .all(|q| x.items.iter().any(|p| java_equals_d(p, q, depth + 1)));
            }
            x.items.len() == y.items.len()
                && x.items
                    .iter()
                    .zip(y.items.iter())
                    .all(|(p, q)| java_equals_d(p, q, depth + 1))
        }
        (Value::Map(_) | Value::Scope(_), Value::Map(_) | Value::Scope(_)) => {
            if same_object(a, b) {
                return true;
            }
            map_equals(a, b, depth)
        }
        (Value::Entry(x), Value::Entry(y)) => {
            java_equals_d(&x.0, &y.0, depth + 1) && java_equals_d(&x.1, &y.1, depth + 1)
        }
        (Value::Host(x), Value::Host(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

fn with_map<R>(v: &Value, f: impl FnOnce(&JMap) -> R) -> Option<R> {
    match v {
        Value::Map(m) => m.try_borrow().ok().map(|m| f(&m)),
        Value::Scope(s) => s.try_borrow().ok().map(|s| f(&s.storage)),
        _ => None,
    }
}

fn map_equals(a: &Value, b: &Value, depth: usize) -> bool {
    let ea: Option<Vec<(Value, Value)>> = with_map(a, |m| m.entries.clone());
    let Some(ea) = ea else { return false };
    with_map(b, |mb| {
        ea.len() == mb.len()
            && ea.iter().all(|(k, v)| match mb.get(k) {
                Some(w) => java_equals_d(v, w, depth + 1),
                None => false,
            })
    })
    .unwrap_or(false)
}

// ---------------------------------------------------------------------- arithmetic

#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    Long,
    BigInteger,
    Double,
}

fn calc_base(a: &Value, b: &Value) -> Base {
    let ai = matches!(a, Value::Int(_) | Value::Long(_) | Value::BigInt(_));
    let bi = matches!(b, Value::Int(_) | Value::Long(_) | Value::BigInt(_));
    let big = matches!(a, Value::BigInt(_)) || matches!(b, Value::BigInt(_));
    if ai && bi {
        if big { Base::BigInteger } else { Base::Long }
    } else {
        // BigInteger with Double is BigDecimal in Velocity; computed as double here.
        Base::Double
    }
}

pub fn as_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i as i64,
        Value::Long(i) => *i,
        Value::BigInt(i) => i.get() as i64,
        Value::Double(d) => java_d2l(*d),
        _ => 0,
    }
}

fn as_i128(v: &Value) -> i128 {
    match v {
        Value::BigInt(i) => i.get(),
        other => as_i64(other) as i128,
    }
}

pub fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Long(i) => *i as f64,
        Value::BigInt(i) => i.get() as f64,
        Value::Double(d) => *d,
        _ => 0.0,
    }
}

/// Java's `(long) d`.
pub fn java_d2l(d: f64) -> i64 {
    if d.is_nan() { 0 } else { d as i64 }
}

/// `Number.intValue()`.
pub fn java_int_value(v: &Value) -> i32 {
    match v {
        Value::Int(i) => *i,
        Value::Long(i) => *i as i32,
        Value::BigInt(i) => i.get() as i32,
        Value::Double(d) => {
            if d.is_nan() {
                0
            } else {
                *d as i32
            }
        }
        _ => 0,
    }
}

/// MathUtils.wrapPrimitive: Integer when both operands are Integer and the result fits.
fn wrap(result: i64, a: &Value, b: &Value) -> Value {
    let any_long = matches!(a, Value::Long(_)) || matches!(b, Value::Long(_));
    if !any_long && result >= i32::MIN as i64 && result <= i32::MAX as i64 {
        Value::Int(result as i32)
    } else {
        Value::Long(result)
    }
}

fn big(r: Option<i128>) -> Result<Value, String> {
    r.map(|i| Value::BigInt(Big::new(i)))
        .ok_or_else(|| "integer overflow beyond 128 bits".to_string())
}

pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Int(i) => *i == 0,
        Value::Long(i) => *i == 0,
        Value::BigInt(i) => i.get() == 0,
        Value::Double(d) => *d == 0.0,
        _ => false,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// MathUtils add/subtract/multiply/divide/modulo for two numbers. Division or modulus by
/// zero gives `Ok(Null)` (Velocity logs and returns null).
pub fn math(op: MathOp, a: &Value, b: &Value) -> Result<Value, String> {
    if matches!(op, MathOp::Div | MathOp::Mod) && is_zero(b) {
        return Ok(Value::Null);
    }
    match calc_base(a, b) {
        Base::Long => {
            let l1 = as_i64(a);
            let l2 = as_i64(b);
            Ok(match op {
                MathOp::Add => {
                    let r = l1.wrapping_add(l2);
                    if (r ^ l1) < 0 && (r ^ l2) < 0 {
                        big((l1 as i128).checked_add(l2 as i128))?
                    } else {
                        wrap(r, a, b)
                    }
                }
                MathOp::Sub => {
                    let r = l1.wrapping_sub(l2);
                    if (r ^ l1) < 0 && (r ^ !l2) < 0 {
                        big((l1 as i128).checked_sub(l2 as i128))?
                    } else {
                        wrap(r, a, b)
                    }
                }
                MathOp::Mul => {
                    let r = l1.wrapping_mul(l2);
                    if l2 != 0 && r.wrapping_div(l2) != l1 {
                        big((l1 as i128).checked_mul(l2 as i128))?
                    } else {
                        wrap(r, a, b)
                    }
                }
                MathOp::Div => wrap(l1.wrapping_div(l2), a, b),
                MathOp::Mod => wrap(l1.wrapping_rem(l2), a, b),
            })
        }
        Base::BigInteger => {
            let x = as_i128(a);
            let y = as_i128(b);
            match op {
                MathOp::Add => big(x.checked_add(y)),
                MathOp::Sub => big(x.checked_sub(y)),
                MathOp::Mul => big(x.checked_mul(y)),
                MathOp::Div => big(x.checked_div(y)),
                MathOp::Mod => {
                    if y <= 0 {
                        Err("BigInteger: modulus not positive".to_string())
                    } else {
                        big(x.checked_rem_euclid(y))
                    }
                }
            }
        }
        Base::Double => {
            let x = as_f64(a);
            let y = as_f64(b);
            Ok(Value::Double(match op {
                MathOp::Add => x + y,
                MathOp::Sub => x - y,
                MathOp::Mul => x * y,
                MathOp::Div => x / y,
                MathOp::Mod => x % y,
            }))
        }
    }
}

/// MathUtils.compare for two numbers.
pub fn compare_numbers(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match calc_base(a, b) {
        Base::Long => as_i64(a).cmp(&as_i64(b)),
        Base::BigInteger => as_i128(a).cmp(&as_i128(b)),
        Base::Double => {
            let (x, y) = (as_f64(a), as_f64(b));
            if x < y {
                Ordering::Less
            } else if x > y {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_to_string_like_java() {
        for (d, s) in [
            (3.0, "3.0"),
            (1e20, "1.0E20"),
            (0.0001, "1.0E-4"),
            (0.0015, "0.0015"),
            (12345678.9, "1.23456789E7"),
            (3.5, "3.5"),
            (0.001, "0.001"),
            (1234567.0, "1234567.0"),
            (-2.5, "-2.5"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (1e7, "1.0E7"),
            (9.999999e6, "9999999.0"),
        ] {
            assert_eq!(java_double_to_string(d), s, "{}", d);
        }
    }

    #[test]
    fn big_keeps_every_i128() {
        for i in [
            0,
            1,
            -1,
            i64::MAX as i128 + 1,
            i64::MIN as i128 - 1,
            i128::MAX,
            i128::MIN,
        ] {
            assert_eq!(Big::new(i).get(), i);
        }
    }

    #[test]
    fn map_lookup_by_pointer_or_text() {
        let mut m = JMap::new();
        for k in ["a", "b", "c"] {
            m.put(Value::str(k), Value::str(&k.to_uppercase()));
        }
        let own = m.entries()[1].0.clone();
        let fresh = Value::str("b");
        for key in [&own, &fresh] {
            assert!(matches!(m.get(key), Some(Value::Str(s)) if &**s == "B"));
        }
        assert!(m.get(&Value::str("z")).is_none());
        // putting an equal key keeps one entry in its place
        m.put(fresh, Value::Int(2));
        assert_eq!(m.len(), 3);
        assert!(matches!(m.get(&own), Some(Value::Int(2))));
    }

    #[test]
    fn arithmetic_promotes_like_velocity() {
        let r = math(MathOp::Add, &Value::Int(i32::MAX), &Value::Int(1)).unwrap();
        assert!(matches!(r, Value::Long(2147483648)));
        let r = math(MathOp::Add, &Value::Long(i64::MAX), &Value::Int(1)).unwrap();
        assert!(matches!(r, Value::BigInt(b) if b.get() == 9223372036854775808));
        let r = math(MathOp::Div, &Value::Int(-7), &Value::Int(2)).unwrap();
        assert!(matches!(r, Value::Int(-3)));
        let r = math(MathOp::Mod, &Value::Int(-7), &Value::Int(2)).unwrap();
        assert!(matches!(r, Value::Int(-1)));
        let r = math(MathOp::Div, &Value::Int(1), &Value::Int(0)).unwrap();
        assert!(r.is_null());
        // Java's overflow check (result / l2 != l1) misses MIN * -1: MIN / -1 == MIN
        let r = math(MathOp::Mul, &Value::Long(i64::MIN), &Value::Int(-1)).unwrap();
        assert!(matches!(r, Value::Long(i64::MIN)));
        let r = math(MathOp::Div, &Value::Long(i64::MIN), &Value::Int(-1)).unwrap();
        assert!(matches!(r, Value::Long(i64::MIN)));
    }
}
