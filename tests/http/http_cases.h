/* SPDX-License-Identifier: MIT
 * The HTTP/1.1 conformance and smuggling table (RELIABILITY.md CF-2), shared
 * by the parser test (test_parse.c) and the server test (test_server.c).
 *
 * Each case is the raw bytes of one request (sometimes with a second,
 * "smuggled" request hidden in them) and what the server must answer:
 *   expect 200: accepted; n_resp responses come back (the handler answers
 *               every request with 200 and "len=<decoded body length>");
 *               body_len is the first request's decoded body length (-1: no check);
 *   expect 4xx/5xx: exactly one response with that status, then the
 *               connection closes; nothing after it is ever parsed.
 * The server test appends a sentinel request (GET /end, Connection: close)
 * to every case: it must be answered after accepted cases and never after
 * rejected ones.
 *
 * To add a case: append a C(...) line. Use \r\n explicitly; the length is
 * taken with sizeof, so NUL bytes inside the literal are fine.
 */
#ifndef KZ_TEST_HTTP_CASES_H
#define KZ_TEST_HTTP_CASES_H

#include <stddef.h>

struct http_case {
    const char *name;
    const char *raw;
    size_t len;
    int expect;   /* HTTP status the server answers the first request with */
    int n_resp;   /* accepted: number of responses before the sentinel's */
    long body_len; /* accepted: decoded body length of the first request, -1 to skip */
};

#define C(name, raw, expect, n_resp, body_len) {name, raw, sizeof(raw) - 1, expect, n_resp, body_len}
#define R(name, raw, expect) C(name, raw, expect, 1, -1)
#define OK(name, raw, body_len) C(name, raw, 200, 1, body_len)
#define HOST "Host: a\r\n"
#define SMUG "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

static const struct http_case http_cases[] = {
    /* ---- accepted ---- */
    OK("get", "GET / HTTP/1.1\r\n" HOST "\r\n", 0),
    OK("post_cl", "POST /x HTTP/1.1\r\n" HOST "Content-Length: 5\r\n\r\nhello", 5),
    OK("cl_zero", "POST / HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n", 0),
    OK("cl_leading_zeros", "POST / HTTP/1.1\r\n" HOST "Content-Length: 005\r\n\r\nhello", 5),
    OK("cl_double_zero", "POST / HTTP/1.1\r\n" HOST "Content-Length: 00\r\n\r\n", 0),
    OK("cl_ows_leading", "POST / HTTP/1.1\r\n" HOST "Content-Length:   5\r\n\r\nhello", 5),
    OK("cl_ows_trailing", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5 \t\r\n\r\nhello", 5),
    OK("chunked", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 11),
    OK("te_case_insensitive", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 3),
    OK("te_tab_before_value", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 3),
    OK("te_trailing_space", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n", 3),
    OK("chunk_upper_hex", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", 10),
    OK("chunk_leading_zeros", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0003\r\nabc\r\n000\r\n\r\n", 3),
    OK("chunk_extensions", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
                           "3;a=b;c\r\nabc\r\n2 ; q=\"x\\\"y\"\r\nde\r\n0;last\r\n\r\n", 5),
    OK("chunk_trailers", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
                         "3\r\nabc\r\n0\r\nX-Trailer: 1\r\nContent-Length: 99\r\nTransfer-Encoding: x\r\n\r\n", 3),
    OK("te_underscore_is_unknown_header", "POST / HTTP/1.1\r\n" HOST "Transfer_Encoding: chunked\r\n"
                                          "Content-Length: 3\r\n\r\nabc", 3),
    OK("absolute_form", "GET http://a/x?y=1 HTTP/1.1\r\n" HOST "\r\n", 0),
    OK("absolute_form_host_mismatch", "GET http://b/x HTTP/1.1\r\n" HOST "\r\n", 0),
    OK("options_asterisk", "OPTIONS * HTTP/1.1\r\n" HOST "\r\n", 0),
    OK("http10_keep_alive_no_host", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0),
    OK("leading_crlf", "\r\nGET / HTTP/1.1\r\n" HOST "\r\n", 0),
    OK("empty_value", "GET / HTTP/1.1\r\n" HOST "X-Empty:\r\n\r\n", 0),
    OK("empty_host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0),
    OK("obs_text_value", "GET / HTTP/1.1\r\n" HOST "X-A: caf\xc3\xa9\r\n\r\n", 0),
    OK("expect_100", "POST / HTTP/1.1\r\n" HOST "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 2),
    OK("get_with_cl_body", "GET / HTTP/1.1\r\n" HOST "Content-Length: 3\r\n\r\nabc", 3),
    C("pipelined_two", "GET /1 HTTP/1.1\r\n" HOST "\r\nPOST /2 HTTP/1.1\r\n" HOST "Content-Length: 1\r\n\r\nx",
      200, 2, 0),
    C("pipelined_chunked_then_get", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"
      "GET / HTTP/1.1\r\n" HOST "\r\n", 200, 2, 1),

    /* ---- framing conflicts: CL and TE ---- */
    R("cl_te_both", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUG, 400),
    R("te_cl_both", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" SMUG, 400),
    R("cl_te_both_conn_close", "POST / HTTP/1.1\r\n" HOST "Connection: close\r\nContent-Length: 5\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    R("dup_cl_same", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    R("dup_cl_diff", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 40\r\n\r\nhello" SMUG, 400),
    R("cl_comma_same", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5, 5\r\n\r\nhello", 400),
    R("cl_comma_diff", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5, 40\r\n\r\nhello", 400),
    R("cl_plus", "POST / HTTP/1.1\r\n" HOST "Content-Length: +5\r\n\r\nhello", 400),
    R("cl_internal_space", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5 5\r\n\r\nhello", 400),
    R("cl_hex", "POST / HTTP/1.1\r\n" HOST "Content-Length: 0x5\r\n\r\nhello", 400),
    R("cl_negative", "POST / HTTP/1.1\r\n" HOST "Content-Length: -5\r\n\r\nhello", 400),
    R("cl_negative_zero", "POST / HTTP/1.1\r\n" HOST "Content-Length: -0\r\n\r\n", 400),
    R("cl_octal", "POST / HTTP/1.1\r\n" HOST "Content-Length: 0o5\r\n\r\nhello", 400),
    R("cl_underscore", "POST / HTTP/1.1\r\n" HOST "Content-Length: 1_0\r\n\r\nhello", 400),
    R("cl_decimal", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5.0\r\n\r\nhello", 400),
    R("cl_trailing_garbage", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5abc\r\n\r\nhello", 400),
    R("cl_empty", "POST / HTTP/1.1\r\n" HOST "Content-Length:\r\n\r\n", 400),
    R("cl_overflow", "POST / HTTP/1.1\r\n" HOST "Content-Length: 99999999999999999999999\r\n\r\n", 400),
    R("cl_huge", "POST / HTTP/1.1\r\n" HOST "Content-Length: 999999999999\r\n\r\n", 413),
    R("cl_sp_before_colon", "POST / HTTP/1.1\r\n" HOST "Content-Length : 5\r\n\r\nhello", 400),
    R("te_identity", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: identity\r\n\r\n", 400),
    R("te_chunked_identity", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    R("te_identity_chunked", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 400),
    R("te_gzip_chunked", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    R("te_double_chunked", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    R("te_dup_headers", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    R("te_dup_headers_identity", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400),
    R("te_xchunked", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello", 400),
    R("te_chunked_suffix", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n", 400),
    R("te_trailing_comma", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400),
    R("te_leading_comma", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", 400),
    R("te_empty", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\r\n\r\n", 400),
    R("te_quoted", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", 400),
    R("te_params", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400),
    R("te_vtab", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: \vchunked\r\n\r\n0\r\n\r\n", 400),
    R("te_formfeed", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: \fchunked\r\n\r\n0\r\n\r\n", 400),
    R("te_nul", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\0\r\n\r\n0\r\n\r\n", 400),
    R("te_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    R("te_sp_before_colon", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello", 400),
    R("te_obs_fold", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),
    R("te_obs_fold_with_cl", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nTransfer-Encoding: x\r\n chunked\r\n\r\nhello", 400),

    /* ---- chunk-size forms ---- */
    R("chunk_negative", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_hex_prefix", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_plus", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_leading_sp", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_trailing_ows", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_underscore", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n1_0\r\n0123456789abcdef\r\n0\r\n\r\n", 400),
    R("chunk_overflow", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_too_big_for_limit", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\nhello", 413),
    R("chunk_empty_size", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_size_bare_lf", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
    R("chunk_size_bare_cr", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n", 400),
    R("chunk_data_bare_lf", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400),
    R("chunk_data_bare_cr", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r0\r\n\r\n", 400),
    R("chunk_data_too_long", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_data_spill", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", 400),
    R("chunk_ext_bare_semicolon", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_ext_lf", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_ext_cr", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_ext_ctrl", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_ext_bad_token", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5;a=b c\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_ext_unterminated_quote", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n", 400),
    R("chunk_last_bare_lf", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\n\n", 400),
    R("chunk_missing_final_crlf", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\n", 400),
    R("trailer_obs_fold", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 400),
    R("trailer_sp_before_colon", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\nX : a\r\n\r\n", 400),
    R("trailer_bare_lf", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\n\r\n", 400),

    /* ---- header syntax ---- */
    R("obs_fold", "GET / HTTP/1.1\r\n" HOST "X-A: b\r\n c\r\n\r\n", 400),
    R("obs_fold_tab", "GET / HTTP/1.1\r\n" HOST "X-A: b\r\n\tc\r\n\r\n", 400),
    R("ws_before_first_header", "GET / HTTP/1.1\r\n " HOST "\r\n", 400),
    R("sp_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    R("tab_before_colon", "GET / HTTP/1.1\r\n" HOST "X-A\t: b\r\n\r\n", 400),
    R("space_in_name", "GET / HTTP/1.1\r\n" HOST "X A: b\r\n\r\n", 400),
    R("empty_name", "GET / HTTP/1.1\r\n" HOST ": b\r\n\r\n", 400),
    R("no_colon", "GET / HTTP/1.1\r\n" HOST "X-A b\r\n\r\n", 400),
    R("bad_name_char", "GET / HTTP/1.1\r\n" HOST "X(A): b\r\n\r\n", 400),
    R("non_ascii_name", "GET / HTTP/1.1\r\n" HOST "X\xc3\xa9: b\r\n\r\n", 400),
    R("nul_in_name", "GET / HTTP/1.1\r\n" HOST "X\0A: b\r\n\r\n", 400),
    R("nul_in_value", "GET / HTTP/1.1\r\n" HOST "X-A: b\0c\r\n\r\n", 400),
    R("ctl_in_value", "GET / HTTP/1.1\r\n" HOST "X-A: b\x1b[c\r\n\r\n", 400),
    R("del_in_value", "GET / HTTP/1.1\r\n" HOST "X-A: b\x7f\r\n\r\n", 400),
    R("bare_cr_in_value", "GET / HTTP/1.1\r\n" HOST "X-A: b\rX-B: c\r\n\r\n", 400),
    R("bare_lf_header", "GET / HTTP/1.1\r\n" HOST "X-A: b\nX-B: c\r\n\r\n", 400),
    R("bare_lf_all", "GET / HTTP/1.1\nHost: a\n\n", 400),
    R("bare_lf_end_of_head", "GET / HTTP/1.1\r\n" HOST "\n", 400),
    R("bare_lf_request_line", "GET / HTTP/1.1\n" HOST "\r\n", 400),
    R("bare_cr_request_line", "GET / HTTP/1.1\r" HOST "\r\n", 400),
    R("header_injection_cr", "GET / HTTP/1.1\r\n" HOST "X-A: b\r\rContent-Length: 5\r\n\r\nhello", 400),
    R("expect_unknown", "POST / HTTP/1.1\r\n" HOST "Expect: 200-ok\r\nContent-Length: 2\r\n\r\nhi", 417),

    /* ---- Host ---- */
    R("missing_host", "GET / HTTP/1.1\r\n\r\n", 400),
    R("duplicate_host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    R("duplicate_host_same", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    R("host_comma_list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
    R("host_userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    R("host_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    R("host_slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    R("absolute_form_no_host", "GET http://a/ HTTP/1.1\r\n\r\n", 400),

    /* ---- request line ---- */
    R("method_bad_char", "G(T / HTTP/1.1\r\n" HOST "\r\n", 400),
    R("method_empty", " / HTTP/1.1\r\n" HOST "\r\n", 400),
    R("method_non_ascii", "G\xc3\x89T / HTTP/1.1\r\n" HOST "\r\n", 400),
    R("double_space_after_method", "GET  / HTTP/1.1\r\n" HOST "\r\n", 400),
    R("double_space_before_version", "GET /  HTTP/1.1\r\n" HOST "\r\n", 400),
    R("tab_separator", "GET\t/ HTTP/1.1\r\n" HOST "\r\n", 400),
    R("trailing_space_version", "GET / HTTP/1.1 \r\n" HOST "\r\n", 400),
    R("no_version", "GET /\r\n" HOST "\r\n", 400),
    R("version_lowercase", "GET / http/1.1\r\n" HOST "\r\n", 400),
    R("version_no_minor", "GET / HTTP/1\r\n" HOST "\r\n", 400),
    R("version_two_digit", "GET / HTTP/1.10\r\n" HOST "\r\n", 400),
    R("version_11_no_dot", "GET / HTTP/11\r\n" HOST "\r\n", 400),
    R("version_junk", "GET / HTTX/1.1\r\n" HOST "\r\n", 400),
    R("version_1_2", "GET / HTTP/1.2\r\n" HOST "\r\n", 505),
    R("version_2_0", "GET / HTTP/2.0\r\n" HOST "\r\n", 505),
    R("version_0_9", "GET / HTTP/0.9\r\n" HOST "\r\n", 505),
    R("target_no_slash", "GET example HTTP/1.1\r\n" HOST "\r\n", 400),
    R("target_fragment", "GET /a#b HTTP/1.1\r\n" HOST "\r\n", 400),
    R("target_asterisk_get", "GET * HTTP/1.1\r\n" HOST "\r\n", 400),
    R("target_authority_form", "CONNECT a:443 HTTP/1.1\r\n" HOST "\r\n", 400),
    R("target_non_ascii", "GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n", 400),
    R("target_nul", "GET /a\0b HTTP/1.1\r\n" HOST "\r\n", 400),
    R("target_ctl", "GET /a\x01 HTTP/1.1\r\n" HOST "\r\n", 400),
    R("absolute_form_empty_authority", "GET http:///x HTTP/1.1\r\n" HOST "\r\n", 400),
    R("too_many_leading_crlf", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n", 400),
    R("binary_garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
};

#define N_HTTP_CASES (sizeof http_cases / sizeof http_cases[0])

#undef C
#undef R
#undef OK
#undef HOST
#undef SMUG

#endif
