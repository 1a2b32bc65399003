// Java reference renderer for the VTL differential tests: Apache Velocity 1.7 with
// API Gateway-like $context, $input, $util and $stageVariables.
//
// Independent of the Rust engine. Renders every case of an input file in one JVM run.
//
// Input: one case per line, TAB-separated fields, each base64 (java.util.Base64, UTF-8):
//   name, template, body, then zero or more triples (kind, key, value) with kind one of
//   header | query | path | context | stage.
// Output: one line per case: base64(name) TAB ("OK" | "ERR") TAB base64(output or message).
//
// Usage: java -cp velocity.jar:commons-lang.jar:commons-collections3.jar:. VtlHarness IN OUT
//        java ... VtlHarness --one TEMPLATE_FILE   (renders with an empty request; for experiments)

import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

import org.apache.commons.lang.StringEscapeUtils;
import org.apache.velocity.VelocityContext;
import org.apache.velocity.app.VelocityEngine;

public class VtlHarness {

    // ---------------------------------------------------------------- $context skeleton
    // Same key order as the Rust engine's Request (both follow the API Gateway WebSocket
    // mapping-template reference); every value starts as null.
    static final String[] CONTEXT_KEYS = {
        "apiId", "authorizer.principalId", "connectedAt", "connectionId", "domainName",
        "error.message", "error.messageString", "error.responseType",
        "error.validationErrorString", "eventType", "extendedRequestId",
        "identity.accountId", "identity.apiKey", "identity.apiKeyId", "identity.caller",
        "identity.cognitoAuthenticationProvider", "identity.cognitoAuthenticationType",
        "identity.cognitoIdentityId", "identity.cognitoIdentityPoolId", "identity.principalOrgId",
        "identity.sourceIp", "identity.user", "identity.userAgent", "identity.userArn",
        "integrationLatency", "messageDirection", "messageId", "requestId", "requestTime",
        "requestTimeEpoch", "routeKey", "stage", "status",
    };
    static final Set<String> LONG_FIELDS = new HashSet<>(Arrays.asList("connectedAt", "requestTimeEpoch"));
    static final Set<String> INT_FIELDS = new HashSet<>(Arrays.asList("status", "integrationLatency"));

    @SuppressWarnings("unchecked")
    static void setContext(Map<String, Object> root, String dotted, String raw) {
        String[] parts = dotted.split("\\.", -1);
        Map<String, Object> m = root;
        for (int i = 0; i < parts.length - 1; i++) {
            Object o = m.get(parts[i]);
            if (!(o instanceof Map)) {
                o = new LinkedHashMap<String, Object>();
                m.put(parts[i], o);
            }
            m = (Map<String, Object>) o;
        }
        Object value = raw;
        if (raw != null) {
            try {
                if (LONG_FIELDS.contains(dotted)) value = Long.valueOf(raw.trim());
                else if (INT_FIELDS.contains(dotted)) value = Integer.valueOf(raw.trim());
            } catch (NumberFormatException e) {
                value = raw;
            }
        }
        m.put(parts[parts.length - 1], value);
    }

    static Map<String, Object> contextSkeleton() {
        Map<String, Object> root = new LinkedHashMap<>();
        for (String k : CONTEXT_KEYS) setContext(root, k, null);
        return root;
    }

    // ---------------------------------------------------------------- minimal JSON
    static final class Json {
        final String s;
        int i;
        Json(String s) { this.s = s; }

        static Object parse(String text) {
            Json p = new Json(text);
            p.ws();
            Object v = p.value();
            p.ws();
            if (p.i != p.s.length()) throw new IllegalArgumentException("trailing characters in JSON");
            return v;
        }

        void ws() {
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') i++; else break;
            }
        }

        Object value() {
            if (i >= s.length()) throw new IllegalArgumentException("unexpected end of JSON");
            char c = s.charAt(i);
            if (c == '{') {
                i++;
                Map<String, Object> m = new LinkedHashMap<>();
                ws();
                if (peek('}')) { i++; return m; }
                while (true) {
                    ws();
                    if (!peek('"')) throw new IllegalArgumentException("expected key");
                    String k = str();
                    ws();
                    expect(':');
                    ws();
                    Object v = value();
                    m.put(k, v);
                    ws();
                    if (peek(',')) { i++; continue; }
                    expect('}');
                    return m;
                }
            }
            if (c == '[') {
                i++;
                List<Object> l = new ArrayList<>();
                ws();
                if (peek(']')) { i++; return l; }
                while (true) {
                    ws();
                    l.add(value());
                    ws();
                    if (peek(',')) { i++; continue; }
                    expect(']');
                    return l;
                }
            }
            if (c == '"') return str();
            if (s.startsWith("true", i)) { i += 4; return Boolean.TRUE; }
            if (s.startsWith("false", i)) { i += 5; return Boolean.FALSE; }
            if (s.startsWith("null", i)) { i += 4; return null; }
            int start = i;
            if (peek('-')) i++;
            while (i < s.length() && "0123456789.eE+-".indexOf(s.charAt(i)) >= 0) i++;
            String num = s.substring(start, i);
            if (num.isEmpty() || num.equals("-")) throw new IllegalArgumentException("bad JSON value");
            if (num.matches("-?(0|[1-9][0-9]*)")) {
                try { return Integer.valueOf(num); } catch (NumberFormatException e) { }
                try { return Long.valueOf(num); } catch (NumberFormatException e) { }
                return Double.valueOf(num);
            }
            if (!num.matches("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?"))
                throw new IllegalArgumentException("bad JSON number");
            return Double.valueOf(num);
        }

        boolean peek(char c) { return i < s.length() && s.charAt(i) == c; }

        void expect(char c) {
            if (!peek(c)) throw new IllegalArgumentException("expected " + c);
            i++;
        }

        String str() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) throw new IllegalArgumentException("unterminated string");
                char c = s.charAt(i++);
                if (c == '"') return b.toString();
                if (c < 0x20) throw new IllegalArgumentException("control character in string");
                if (c != '\\') { b.append(c); continue; }
                if (i >= s.length()) throw new IllegalArgumentException("bad escape");
                char e = s.charAt(i++);
                switch (e) {
                    case '"': b.append('"'); break;
                    case '\\': b.append('\\'); break;
                    case '/': b.append('/'); break;
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'n': b.append('\n'); break;
                    case 'r': b.append('\r'); break;
                    case 't': b.append('\t'); break;
                    case 'u':
                        if (i + 4 > s.length()) throw new IllegalArgumentException("bad \\u escape");
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                        break;
                    default: throw new IllegalArgumentException("bad escape");
                }
            }
        }

        // Compact serialisation (the text $input.json returns).
        static String write(Object v) {
            StringBuilder b = new StringBuilder();
            write(b, v);
            return b.toString();
        }

        @SuppressWarnings("unchecked")
        static void write(StringBuilder b, Object v) {
            if (v == null) b.append("null");
            else if (v instanceof String) quote(b, (String) v);
            else if (v instanceof Map) {
                b.append('{');
                boolean first = true;
                for (Map.Entry<String, Object> e : ((Map<String, Object>) v).entrySet()) {
                    if (!first) b.append(',');
                    first = false;
                    quote(b, e.getKey());
                    b.append(':');
                    write(b, e.getValue());
                }
                b.append('}');
            } else if (v instanceof List) {
                b.append('[');
                boolean first = true;
                for (Object o : (List<Object>) v) {
                    if (!first) b.append(',');
                    first = false;
                    write(b, o);
                }
                b.append(']');
            } else b.append(v.toString());
        }

        static void quote(StringBuilder b, String s) {
            b.append('"');
            for (int k = 0; k < s.length(); k++) {
                char c = s.charAt(k);
                switch (c) {
                    case '"': b.append("\\\""); break;
                    case '\\': b.append("\\\\"); break;
                    case '\n': b.append("\\n"); break;
                    case '\r': b.append("\\r"); break;
                    case '\t': b.append("\\t"); break;
                    case '\b': b.append("\\b"); break;
                    case '\f': b.append("\\f"); break;
                    default:
                        if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                        else b.append(c);
                }
            }
            b.append('"');
        }

        // Minimal JSONPath: $ followed by .name, ['name'] / ["name"], [index].
        // Returns a one-element array holding the value, or null when nothing matches.
        @SuppressWarnings("unchecked")
        static Object[] select(Object root, String path) {
            String p = path.trim();
            if (!p.startsWith("$")) throw new IllegalArgumentException("JSONPath must start with $");
            int k = 1;
            Object cur = root;
            while (k < p.length()) {
                char c = p.charAt(k);
                if (c == '.') {
                    int e = k + 1;
                    while (e < p.length() && p.charAt(e) != '.' && p.charAt(e) != '[') e++;
                    String name = p.substring(k + 1, e);
                    if (name.isEmpty()) throw new IllegalArgumentException("bad JSONPath");
                    if (!(cur instanceof Map) || !((Map<String, Object>) cur).containsKey(name)) return null;
                    cur = ((Map<String, Object>) cur).get(name);
                    k = e;
                } else if (c == '[') {
                    int e = p.indexOf(']', k);
                    if (e < 0) throw new IllegalArgumentException("bad JSONPath");
                    String inner = p.substring(k + 1, e).trim();
                    if (inner.length() >= 2 && (inner.charAt(0) == '\'' || inner.charAt(0) == '"')) {
                        String name = inner.substring(1, inner.length() - 1);
                        if (!(cur instanceof Map) || !((Map<String, Object>) cur).containsKey(name)) return null;
                        cur = ((Map<String, Object>) cur).get(name);
                    } else {
                        int idx = Integer.parseInt(inner);
                        if (!(cur instanceof List)) return null;
                        List<Object> l = (List<Object>) cur;
                        if (idx < 0) idx += l.size();
                        if (idx < 0 || idx >= l.size()) return null;
                        cur = l.get(idx);
                    }
                    k = e + 1;
                } else {
                    throw new IllegalArgumentException("bad JSONPath");
                }
            }
            return new Object[] { cur };
        }
    }

    // ---------------------------------------------------------------- $input, $util
    public static class Input {
        private final Map<String, Object> params;
        private final String body;

        Input(Map<String, Object> params, String body) {
            this.params = params;
            this.body = body;
        }

        public String getBody() { return body; }

        public Map<String, Object> params() { return params; }

        @SuppressWarnings("unchecked")
        public Object params(String name) {
            for (String kind : new String[] { "path", "querystring", "header" }) {
                Object v = ((Map<String, Object>) params.get(kind)).get(name);
                if (v != null) return v;
            }
            return "";
        }

        public String json(String path) {
            if (path == null) return null;
            Object root;
            try {
                root = Json.parse(body);
            } catch (RuntimeException e) {
                return null;
            }
            Object[] r = Json.select(root, path);
            return r == null ? null : Json.write(r[0]);
        }

        public Object path(String path) {
            if (path == null) return null;
            Object root;
            try {
                root = Json.parse(body);
            } catch (RuntimeException e) {
                return path.trim().equals("$") ? body : null;
            }
            Object[] r = Json.select(root, path);
            return r == null ? null : r[0];
        }
    }

    public static class Util {
        public String escapeJavaScript(String s) { return StringEscapeUtils.escapeJavaScript(s); }

        public Object parseJson(String s) {
            if (s == null) return null;
            return Json.parse(s);
        }

        public String urlEncode(String s) throws UnsupportedEncodingException {
            return s == null ? null : java.net.URLEncoder.encode(s, "UTF-8");
        }

        public String urlDecode(String s) throws UnsupportedEncodingException {
            return s == null ? null : java.net.URLDecoder.decode(s, "UTF-8");
        }

        public String base64Encode(String s) {
            return s == null ? null : Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
        }

        public String base64Decode(String s) {
            return s == null ? null : new String(Base64.getDecoder().decode(s), StandardCharsets.UTF_8);
        }
    }

    // ---------------------------------------------------------------- rendering
    static VelocityEngine engine() throws Exception {
        Properties p = new Properties();
        p.setProperty("runtime.log.logsystem.class", "org.apache.velocity.runtime.log.NullLogChute");
        p.setProperty("directive.foreach.maxloops", "1000");
        VelocityEngine ve = new VelocityEngine();
        ve.init(p);
        return ve;
    }

    static String[] render(VelocityEngine ve, String name, String template, String body, List<String[]> items) {
        Map<String, Object> context = contextSkeleton();
        Map<String, Object> header = new LinkedHashMap<>();
        Map<String, Object> query = new LinkedHashMap<>();
        Map<String, Object> path = new LinkedHashMap<>();
        Map<String, Object> stage = new LinkedHashMap<>();
        for (String[] it : items) {
            switch (it[0]) {
                case "header": header.put(it[1], it[2]); break;
                case "query": query.put(it[1], it[2]); break;
                case "path": path.put(it[1], it[2]); break;
                case "stage": stage.put(it[1], it[2]); break;
                case "context": setContext(context, it[1], it[2]); break;
                default: throw new IllegalArgumentException("unknown kind " + it[0]);
            }
        }
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("path", path);
        params.put("querystring", query);
        params.put("header", header);
        VelocityContext vc = new VelocityContext();
        vc.put("context", context);
        vc.put("input", new Input(params, body));
        vc.put("util", new Util());
        vc.put("stageVariables", stage);
        StringWriter w = new StringWriter();
        try {
            ve.evaluate(vc, w, name, template);
            return new String[] { "OK", w.toString() };
        } catch (Throwable t) {
            String msg = t.getClass().getSimpleName() + ": " + t.getMessage();
            return new String[] { "ERR", msg };
        }
    }

    static String d(String b64) {
        return new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8);
    }

    static String e(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    public static void main(String[] args) throws Exception {
        VelocityEngine ve = engine();
        if (args.length == 2 && args[0].equals("--one")) {
            String t = new String(Files.readAllBytes(Paths.get(args[1])), StandardCharsets.UTF_8);
            String[] r = render(ve, args[1], t, "", new ArrayList<String[]>());
            if (r[0].equals("OK")) System.out.print(r[1]);
            else { System.err.println("error: " + r[1]); System.exit(1); }
            return;
        }
        List<String> lines = Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8);
        try (Writer out = new OutputStreamWriter(new FileOutputStream(args[1]), StandardCharsets.UTF_8)) {
            for (String line : lines) {
                if (line.isEmpty()) continue;
                String[] f = line.split("\t", -1);
                String name = d(f[0]);
                List<String[]> items = new ArrayList<>();
                for (int k = 3; k + 2 < f.length; k += 3) {
                    items.add(new String[] { d(f[k]), d(f[k + 1]), d(f[k + 2]) });
                }
                String[] r = render(ve, name, d(f[1]), d(f[2]), items);
                out.write(e(name) + "\t" + r[0] + "\t" + e(r[1]) + "\n");
            }
        }
    }
}
