// SPDX-License-Identifier: GPL-2.0

//! Procedural macro to run KUnit tests using a user-space like syntax.

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// See `kunit_tests` in `lib.rs`.
pub(crate) fn kunit_tests(attr: TokenStream, ts: TokenStream) -> TokenStream {
    let suite = attr.to_string();
    if suite.is_empty() || !suite.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        panic!("#[kunit_tests(suite_name)]: the suite name must be an identifier");
    }
    if suite.len() > 255 {
        panic!("#[kunit_tests]: the suite name must be at most 255 bytes long");
    }

    let mut tokens: Vec<TokenTree> = ts.into_iter().collect();
    // The module's body is its last token: `... mod name { body }`.
    let body = match tokens.pop() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g,
        _ => panic!("#[kunit_tests]: expected a module with a body (`mod tests {{ ... }}`)"),
    };
    if !tokens
        .iter()
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "mod"))
    {
        panic!("#[kunit_tests] applies to a module");
    }

    // The file KUnit names in a failed assertion's location.
    #[expect(
        clippy::incompatible_msrv,
        reason = "this backport is built with the rustc of Debian's rustc-web (1.96)"
    )]
    let file = Span::call_site().file();
    let (body, tests) = strip_test_attributes(body.stream());
    let mut body = rewrite_asserts(body, &file, &suite);
    if tests.is_empty() {
        panic!("#[kunit_tests({suite})]: the module has no #[test] functions");
    }

    // A C-ABI wrapper per test, the case table that KUnit writes its results into, and the
    // suite, placed where KUnit finds it.
    let mut generated = String::new();
    for (test, line) in &tests {
        let offset = line_offset(*line);
        generated.push_str(&format!(
            r#"
            unsafe extern "C" fn __kunit_rust_wrapper_{test}(_test: *mut ::kernel::bindings::kunit) {{
                let ret = {test}();
                ::kernel::kunit_assert!(
                    "{test}", "{file}", {offset}, ::kernel::kunit::is_test_result_ok(ret, "{test}")
                );
            }}
            "#
        ));
    }
    generated.push_str(&format!(
        "static mut __KUNIT_TEST_CASES: [::kernel::bindings::kunit_case; {}] = [",
        tests.len() + 1
    ));
    for (test, _) in &tests {
        generated.push_str(&format!(
            "::kernel::kunit::kunit_case(::kernel::c_str!(\"{test}\"), __kunit_rust_wrapper_{test}),"
        ));
    }
    generated.push_str(&format!(
        "::kernel::kunit::kunit_case_null()];
        ::kernel::kunit_unsafe_test_suite!({suite}, __KUNIT_TEST_CASES);"
    ));
    body.extend(parse(&generated));

    tokens.push(TokenTree::Group(Group::new(Delimiter::Brace, body)));
    tokens.into_iter().collect()
}

/// The line of the source that `span` covers.
#[expect(
    clippy::incompatible_msrv,
    reason = "this backport is built with the rustc of Debian's rustc-web (1.96)"
)]
fn source_line(span: Span) -> usize {
    span.line()
}

/// The `$diff` argument of `kunit_assert!` that makes it report `line`.
///
/// `kunit_assert!` reports `line!() - $diff`; inside the expansion of this attribute `line!()` is
/// the attribute's line, and so is the `line!()` in the offset, which cancels it out.
fn line_offset(line: usize) -> TokenStream {
    parse(&format!("(::core::line!() as i32 - {line})"))
}

/// Parses code this macro generated.
fn parse(code: &str) -> TokenStream {
    match code.parse() {
        Ok(ts) => ts,
        // PANIC: The code is ours and well-formed; a panic here is a bug of this macro, which the
        // compiler reports as an error of the attribute.
        Err(e) => panic!("#[kunit_tests] generated code that does not parse: {e}"),
    }
}

/// Removes the `#[test]` attributes of a module's body and returns the names and lines of the
/// functions that carried them.
fn strip_test_attributes(body: TokenStream) -> (TokenStream, Vec<(String, usize)>) {
    let mut out = Vec::new();
    let mut tests = Vec::new();
    let mut pending_test = false;
    let mut iter = body.into_iter().peekable();
    while let Some(tt) = iter.next() {
        if let TokenTree::Punct(p) = &tt {
            if p.as_char() == '#' {
                if let Some(TokenTree::Group(g)) = iter.peek() {
                    if g.delimiter() == Delimiter::Bracket && g.stream().to_string() == "test" {
                        iter.next();
                        pending_test = true;
                        continue;
                    }
                }
            }
        }
        if pending_test {
            if let TokenTree::Ident(i) = &tt {
                if i.to_string() == "fn" {
                    match iter.peek() {
                        Some(TokenTree::Ident(name)) => {
                            tests.push((name.to_string(), source_line(name.span())))
                        }
                        _ => panic!("#[test] must be followed by a function"),
                    }
                    pending_test = false;
                }
            }
        }
        out.push(tt);
    }
    if pending_test {
        panic!("#[test] must be followed by a function");
    }
    (out.into_iter().collect(), tests)
}

/// Maps `assert!` and `assert_eq!` to their KUnit versions, which report a failure to KUnit
/// instead of panicking. `name` is the enclosing function's. The new tokens keep the span of the
/// macro's name, so that KUnit reports the line of the assertion.
fn rewrite_asserts(ts: TokenStream, file: &str, name: &str) -> TokenStream {
    let mut out: Vec<TokenTree> = Vec::new();
    let mut next_fn: Option<String> = None;
    let mut iter = ts.into_iter().peekable();
    while let Some(tt) = iter.next() {
        match tt {
            TokenTree::Ident(ref ident)
                if matches!(ident.to_string().as_str(), "assert" | "assert_eq")
                    && matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '!') =>
            {
                let (Some(bang), Some(TokenTree::Group(args))) = (iter.next(), iter.next()) else {
                    panic!("malformed {ident}! invocation");
                };
                let span = ident.span();
                out.push(Punct::new(':', Spacing::Joint).into());
                out.push(Punct::new(':', Spacing::Alone).into());
                out.push(Ident::new("kernel", span).into());
                out.push(Punct::new(':', Spacing::Joint).into());
                out.push(Punct::new(':', Spacing::Alone).into());
                out.push(Ident::new(&format!("kunit_{ident}"), span).into());
                out.push(bang);
                let mut inner: Vec<TokenTree> = vec![
                    Literal::string(name).into(),
                    Punct::new(',', Spacing::Alone).into(),
                    Literal::string(file).into(),
                    Punct::new(',', Spacing::Alone).into(),
                ];
                inner.extend(line_offset(source_line(span)));
                inner.push(Punct::new(',', Spacing::Alone).into());
                inner.extend(rewrite_asserts(args.stream(), file, name));
                let mut group = Group::new(args.delimiter(), inner.into_iter().collect());
                group.set_span(args.span());
                out.push(group.into());
            }
            TokenTree::Ident(ref ident) if ident.to_string() == "fn" => {
                if let Some(TokenTree::Ident(f)) = iter.peek() {
                    next_fn = Some(f.to_string());
                }
                out.push(tt);
            }
            TokenTree::Group(g) => {
                // A function's body is the first brace group after its name.
                let inner_name = match (g.delimiter(), next_fn.take()) {
                    (Delimiter::Brace, Some(f)) => f,
                    (_, pending) => {
                        next_fn = pending;
                        name.to_string()
                    }
                };
                let stream = rewrite_asserts(g.stream(), file, &inner_name);
                let mut group = Group::new(g.delimiter(), stream);
                group.set_span(g.span());
                out.push(group.into());
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}
