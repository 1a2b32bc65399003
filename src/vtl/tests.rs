use super::*;

fn r(t: &str) -> String {
    let t = Template::parse("t.vtl", t).unwrap();
    render(&t, &Request::new()).unwrap()
}

#[test]
fn smoke() {
    assert_eq!(r("a$x b"), "a$x b");
}
