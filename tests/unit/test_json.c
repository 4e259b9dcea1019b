/*
 * lib/base/json.c: what is written into status and dead-letter JSON, and the
 * strict reader. The accept and reject tables follow the categories of
 * Nicolas Seriot's JSONTestSuite (test_parsing/y_* must be accepted, n_*
 * refused; of its i_* cases, the ones about surrogates, invalid UTF-8 and
 * byte order marks are refused here, as RFC 8259 allows), with the names of
 * its files; the inputs were written for this table. Every refusal is
 * checked for its status and offset, and for the offset being right: the
 * bytes before it are a valid beginning of a document.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/json.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
/* A literal with its length, so that inputs may hold NUL bytes. */
#define S(lit)		lit, sizeof(lit) - 1
#define END		((size_t)-1)	/* offset: the input's length */

static void
check(const char *in, size_t n, const char *want)
{
	char out[128];

	assert_int_equal(json_escape(out, sizeof(out), in, n), strlen(want));
	assert_string_equal(out, want);
}

static void
test_escapes(void **state)
{
	(void)state;
	check("plain/topic", 11, "plain/topic");
	check("a\"b\\c", 5, "a\\\"b\\\\c");
	check("\n\t\x01\x7f", 4, "\\u000a\\u0009\\u0001\\u007f");
	check("\0x", 2, "\\u0000x");
	check("", 0, "");
	/* well-formed UTF-8 passes as it is */
	check("caf\xc3\xa9", 5, "caf\xc3\xa9");
	/* anything else is read as Latin-1, so the output stays valid */
	check("caf\xe9", 4, "caf\\u00e9");
	check("\xc3\xa9\xff", 3, "\\u00c3\\u00a9\\u00ff");
}

static void
test_truncation(void **state)
{
	char out[6];

	(void)state;
	/* like snprintf: the full length, a cut and terminated output */
	assert_int_equal(json_escape(out, sizeof(out), "abc\"def", 7), 8);
	assert_string_equal(out, "abc\\\"");
	assert_int_equal(json_escape(NULL, 0, "\x01", 1), 6);
	memset(out, 'z', sizeof(out));
	assert_int_equal(json_escape(out, 1, "abc", 3), 3);
	assert_int_equal(out[0], '\0');
	assert_int_equal(out[1], 'z');
}

/* --- the reader ---------------------------------------------------------- */

static const struct {
	const char	*name;
	const char	*in;
	size_t		 len;
} accept[] = {
	{ "y_array_arraysWithSpaces", S("[[]   ]") },
	{ "y_array_empty", S("[]") },
	{ "y_array_empty-string", S("[\"\"]") },
	{ "y_array_ending_with_newline", S("[\"a\"]\n") },
	{ "y_array_false", S("[false]") },
	{ "y_array_heterogeneous", S("[null, 1, \"1\", {}]") },
	{ "y_array_null", S("[null]") },
	{ "y_array_with_1_and_newline", S("[1\n]") },
	{ "y_array_with_leading_space", S(" [1]") },
	{ "y_array_with_several_null", S("[1,null,null,null,2]") },
	{ "y_array_with_trailing_space", S("[2] ") },
	{ "y_number", S("[123e65]") },
	{ "y_number_0e+1", S("[0e+1]") },
	{ "y_number_0e1", S("[0e1]") },
	{ "y_number_after_space", S("[ 4]") },
	{ "y_number_double_close_to_zero", S("[-0.00000000000000000000000000"
	    "0000000000000000000000000000000000000000000000000001]") },
	{ "y_number_int_with_exp", S("[20e1]") },
	{ "y_number_minus_zero", S("[-0]") },
	{ "y_number_negative_int", S("[-123]") },
	{ "y_number_negative_one", S("[-1]") },
	{ "y_number_real_capital_e", S("[1E22]") },
	{ "y_number_real_capital_e_neg_exp", S("[1E-2]") },
	{ "y_number_real_capital_e_pos_exp", S("[1E+2]") },
	{ "y_number_real_exponent", S("[123e45]") },
	{ "y_number_real_fraction_exponent", S("[123.456e78]") },
	{ "y_number_real_neg_exp", S("[1e-2]") },
	{ "y_number_real_pos_exponent", S("[1e+2]") },
	{ "y_number_simple_int", S("[123]") },
	{ "y_number_simple_real", S("[123.456789]") },
	{ "y_number_huge_exp", S("[0.4e0066999999999999999999999999999999999"
	    "99999999999999999999999999999999999999999999999999999999999999"
	    "99999999999999999999999999999999999999999999969999999006]") },
	{ "y_object", S("{\"asd\":\"sdf\", \"dfg\":\"fgh\"}") },
	{ "y_object_basic", S("{\"asd\":\"sdf\"}") },
	{ "y_object_duplicated_key", S("{\"a\":\"b\",\"a\":\"c\"}") },
	{ "y_object_duplicated_key_and_value", S("{\"a\":\"b\",\"a\":\"b\"}") },
	{ "y_object_empty", S("{}") },
	{ "y_object_empty_key", S("{\"\":0}") },
	{ "y_object_escaped_null_in_key", S("{\"foo\\u0000bar\": 42}") },
	{ "y_object_extreme_numbers",
	    S("{ \"min\": -1.0e+28, \"max\": 1.0e+28 }") },
	{ "y_object_long_strings", S("{\"x\":[{\"id\": \"xxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxx\"}], \"id\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxx\"}") },
	{ "y_object_simple", S("{\"a\":[]}") },
	{ "y_object_string_unicode", S("{\"title\":\"\\u041f\\u043e\\u043b"
	    "\\u0442\\u043e\\u0440\\u0430 \\u0417\\u0435\\u043c\\u043b\\u0435"
	    "\\u043a\\u043e\\u043f\\u0430\" }") },
	{ "y_object_with_newlines", S("{\n\"a\": \"b\"\n}") },
	{ "y_string_1_2_3_bytes_UTF-8_sequences",
	    S("[\"\\u0060\\u012a\\u12AB\"]") },
	{ "y_string_accepted_surrogate_pair", S("[\"\\uD801\\udc37\"]") },
	{ "y_string_accepted_surrogate_pairs",
	    S("[\"\\ud83d\\ude39\\ud83d\\udc8d\"]") },
	{ "y_string_allowed_escapes", S("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]") },
	{ "y_string_backslash_and_u_escaped_zero", S("[\"\\\\u0000\"]") },
	{ "y_string_backslash_doublequotes", S("[\"\\\"\"]") },
	{ "y_string_comments", S("[\"a/*b*/c/*d//e\"]") },
	{ "y_string_double_escape_a", S("[\"\\\\a\"]") },
	{ "y_string_double_escape_n", S("[\"\\\\n\"]") },
	{ "y_string_escaped_control_character", S("[\"\\u0012\"]") },
	{ "y_string_escaped_noncharacter", S("[\"\\uFFFF\"]") },
	{ "y_string_in_array", S("[\"asd\"]") },
	{ "y_string_in_array_with_leading_space", S("[ \"asd\"]") },
	{ "y_string_last_surrogates_1_and_2", S("[\"\\uDBFF\\uDFFF\"]") },
	{ "y_string_nbsp_uescaped", S("[\"new\\u00A0line\"]") },
	{ "y_string_nonCharacterInUTF-8_U+10FFFF", S("[\"\364\217\277\277\"]") },
	{ "y_string_nonCharacterInUTF-8_U+FFFF", S("[\"\357\277\277\"]") },
	{ "y_string_null_escape", S("[\"\\u0000\"]") },
	{ "y_string_one-byte-utf-8", S("[\"\\u002c\"]") },
	{ "y_string_pi", S("[\"\317\200\"]") },
	{ "y_string_reservedCharacterInUTF-8_U+1BFFF",
	    S("[\"\360\233\277\277\"]") },
	{ "y_string_simple_ascii", S("[\"asd \"]") },
	{ "y_string_space", S("\" \"") },
	{ "y_string_surrogates_U+1D11E_MUSICAL_SYMBOL_G_CLEF",
	    S("[\"\\uD834\\uDd1e\"]") },
	{ "y_string_three-byte-utf-8", S("[\"\\u0821\"]") },
	{ "y_string_two-byte-utf-8", S("[\"\\u0123\"]") },
	{ "y_string_u+2028_line_sep", S("[\"\342\200\250\"]") },
	{ "y_string_u+2029_par_sep", S("[\"\342\200\251\"]") },
	{ "y_string_uEscape", S("[\"\\u0061\\u30af\\u30EA\\u30b9\"]") },
	{ "y_string_uescaped_newline", S("[\"new\\u000Aline\"]") },
	{ "y_string_unescaped_char_delete", S("[\"\177\"]") },
	{ "y_string_unicode", S("[\"\\uA66D\"]") },
	{ "y_string_unicodeEscapedBackslash", S("[\"\\u005C\"]") },
	{ "y_string_unicode_2", S("[\"\342\215\202\343\210\264\342\215\202\"]") },
	{ "y_string_utf8", S("[\"\342\202\254\360\235\204\236\"]") },
	{ "y_string_with_del_character", S("[\"a\177a\"]") },
	{ "y_structure_lonely_false", S("false") },
	{ "y_structure_lonely_int", S("42") },
	{ "y_structure_lonely_negative_real", S("-0.1") },
	{ "y_structure_lonely_null", S("null") },
	{ "y_structure_lonely_string", S("\"asd\"") },
	{ "y_structure_lonely_true", S("true") },
	{ "y_structure_string_empty", S("\"\"") },
	{ "y_structure_trailing_newline", S("[\"a\"]\n") },
	{ "y_structure_true_in_array", S("[true]") },
	{ "y_structure_whitespace_array", S(" [] ") },
	{ "y_all_white_space_kinds", S("\t\r\n {\t\r\n \"a\"\t\r\n :\t\r\n "
	    "[\t\r\n 1\t\r\n ,\t\r\n 2\t\r\n ]\t\r\n }\t\r\n ") },
};

static const struct {
	const char		*name;
	const char		*in;
	size_t			 len;
	enum json_status	 want;
	size_t			 off;
} reject[] = {
	{ "n_array_1_true_without_comma", S("[1 true]"), JSON_UNEXPECTED, 3 },
	{ "n_array_a_invalid_utf8", S("[a\345]"), JSON_UNEXPECTED, 1 },
	{ "n_array_colon_instead_of_comma", S("[\"\": 1]"), JSON_UNEXPECTED, 3 },
	{ "n_array_comma_after_close", S("[\"\"],"), JSON_TRAILING, 4 },
	{ "n_array_comma_and_number", S("[,1]"), JSON_UNEXPECTED, 1 },
	{ "n_array_double_comma", S("[1,,2]"), JSON_UNEXPECTED, 3 },
	{ "n_array_double_extra_comma", S("[\"x\",,]"), JSON_UNEXPECTED, 5 },
	{ "n_array_extra_close", S("[\"x\"]]"), JSON_TRAILING, 5 },
	{ "n_array_extra_comma", S("[\"\",]"), JSON_UNEXPECTED, 4 },
	{ "n_array_incomplete", S("[\"x\""), JSON_TRUNCATED, END },
	{ "n_array_incomplete_invalid_value", S("[x"), JSON_UNEXPECTED, 1 },
	{ "n_array_inner_array_no_comma", S("[3[4]]"), JSON_UNEXPECTED, 2 },
	{ "n_array_invalid_utf8", S("[\377]"), JSON_UNEXPECTED, 1 },
	{ "n_array_items_separated_by_semicolon", S("[1:2]"),
	    JSON_UNEXPECTED, 2 },
	{ "n_array_just_comma", S("[,]"), JSON_UNEXPECTED, 1 },
	{ "n_array_just_minus", S("[-]"), JSON_BAD_NUMBER, 2 },
	{ "n_array_missing_value", S("[   , \"\"]"), JSON_UNEXPECTED, 4 },
	{ "n_array_newlines_unclosed", S("[\"a\",\n4\n,1,"), JSON_TRUNCATED,
	    END },
	{ "n_array_number_and_comma", S("[1,]"), JSON_UNEXPECTED, 3 },
	{ "n_array_number_and_several_commas", S("[1,,]"), JSON_UNEXPECTED,
	    3 },
	{ "n_array_spaces_vertical_tab_formfeed", S("[\"\va\"\\f]"),
	    JSON_CONTROL, 2 },
	{ "n_array_star_inside", S("[*]"), JSON_UNEXPECTED, 1 },
	{ "n_array_unclosed", S("[\"\""), JSON_TRUNCATED, END },
	{ "n_array_unclosed_trailing_comma", S("[1,"), JSON_TRUNCATED, END },
	{ "n_array_unclosed_with_new_lines", S("[1,\n1\n,1"), JSON_TRUNCATED,
	    END },
	{ "n_array_unclosed_with_object_inside", S("[{}"), JSON_TRUNCATED,
	    END },
	{ "n_incomplete_false", S("[fals]"), JSON_UNEXPECTED, 5 },
	{ "n_incomplete_null", S("[nul]"), JSON_UNEXPECTED, 4 },
	{ "n_incomplete_true", S("[tru]"), JSON_UNEXPECTED, 4 },
	{ "n_multidigit_number_then_00", S("123\0"), JSON_TRAILING, 3 },
	{ "n_number_++", S("[++1234]"), JSON_UNEXPECTED, 1 },
	{ "n_number_+1", S("[+1]"), JSON_UNEXPECTED, 1 },
	{ "n_number_+Inf", S("[+Inf]"), JSON_UNEXPECTED, 1 },
	{ "n_number_-01", S("[-01]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_-1.0.", S("[-1.0.]"), JSON_UNEXPECTED, 5 },
	{ "n_number_-2.", S("[-2.]"), JSON_BAD_NUMBER, 4 },
	{ "n_number_-NaN", S("[-NaN]"), JSON_BAD_NUMBER, 2 },
	{ "n_number_.-1", S("[.-1]"), JSON_UNEXPECTED, 1 },
	{ "n_number_.2e-3", S("[.2e-3]"), JSON_UNEXPECTED, 1 },
	{ "n_number_0.1.2", S("[0.1.2]"), JSON_UNEXPECTED, 4 },
	{ "n_number_0.3e+", S("[0.3e+]"), JSON_BAD_NUMBER, 6 },
	{ "n_number_0.3e", S("[0.3e]"), JSON_BAD_NUMBER, 5 },
	{ "n_number_0.e1", S("[0.e1]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_0_capital_E+", S("[0E+]"), JSON_BAD_NUMBER, 4 },
	{ "n_number_0_capital_E", S("[0E]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_0e+", S("[0e+]"), JSON_BAD_NUMBER, 4 },
	{ "n_number_0e", S("[0e]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_1.0e+", S("[1.0e+]"), JSON_BAD_NUMBER, 6 },
	{ "n_number_1.0e-", S("[1.0e-]"), JSON_BAD_NUMBER, 6 },
	{ "n_number_1.0e", S("[1.0e]"), JSON_BAD_NUMBER, 5 },
	{ "n_number_1_000", S("[1 000.0]"), JSON_UNEXPECTED, 3 },
	{ "n_number_1eE2", S("[1eE2]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_2.e+3", S("[2.e+3]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_2.e-3", S("[2.e-3]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_2.e3", S("[2.e3]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_9.e+", S("[9.e+]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_Inf", S("[Inf]"), JSON_UNEXPECTED, 1 },
	{ "n_number_NaN", S("[NaN]"), JSON_UNEXPECTED, 1 },
	{ "n_number_U+FF11_fullwidth_digit_one", S("[\357\274\221]"),
	    JSON_UNEXPECTED, 1 },
	{ "n_number_expression", S("[1+2]"), JSON_UNEXPECTED, 2 },
	{ "n_number_hex_1_digit", S("[0x1]"), JSON_UNEXPECTED, 2 },
	{ "n_number_hex_2_digits", S("[0x42]"), JSON_UNEXPECTED, 2 },
	{ "n_number_infinity", S("[Infinity]"), JSON_UNEXPECTED, 1 },
	{ "n_number_invalid+-", S("[0e+-1]"), JSON_BAD_NUMBER, 4 },
	{ "n_number_invalid-negative-real", S("[-123.123foo]"),
	    JSON_UNEXPECTED, 9 },
	{ "n_number_minus_infinity", S("[-Infinity]"), JSON_BAD_NUMBER, 2 },
	{ "n_number_minus_sign_with_trailing_garbage", S("[-foo]"),
	    JSON_BAD_NUMBER, 2 },
	{ "n_number_minus_space_1", S("[- 1]"), JSON_BAD_NUMBER, 2 },
	{ "n_number_neg_int_starting_with_zero", S("[-012]"),
	    JSON_BAD_NUMBER, 3 },
	{ "n_number_neg_real_without_int_part", S("[-.123]"),
	    JSON_BAD_NUMBER, 2 },
	{ "n_number_neg_with_garbage_at_end", S("[-1x]"), JSON_UNEXPECTED, 3 },
	{ "n_number_real_garbage_after_e", S("[1ea]"), JSON_BAD_NUMBER, 3 },
	{ "n_number_real_without_fractional_part", S("[1.]"),
	    JSON_BAD_NUMBER, 3 },
	{ "n_number_starting_with_dot", S("[.123]"), JSON_UNEXPECTED, 1 },
	{ "n_number_with_alpha", S("[1.2a-3]"), JSON_UNEXPECTED, 4 },
	{ "n_number_with_alpha_char", S("[1.8011670033376514H-308]"),
	    JSON_UNEXPECTED, 19 },
	{ "n_number_with_leading_zero", S("[012]"), JSON_BAD_NUMBER, 2 },
	{ "top_level_0_1", S("01"), JSON_BAD_NUMBER, 1 },
	{ "n_object_bad_value", S("[\"x\", truth]"), JSON_UNEXPECTED, 9 },
	{ "n_object_bracket_key", S("{[: \"x\"}"), JSON_UNEXPECTED, 1 },
	{ "n_object_comma_instead_of_colon", S("{\"x\", null}"),
	    JSON_UNEXPECTED, 4 },
	{ "n_object_double_colon", S("{\"x\"::\"b\"}"), JSON_UNEXPECTED, 5 },
	{ "n_object_emoji", S("{\360\237\207\250\360\237\207\255}"),
	    JSON_UNEXPECTED, 1 },
	{ "n_object_garbage_at_end", S("{\"a\":\"a\" 123}"), JSON_UNEXPECTED,
	    9 },
	{ "n_object_key_with_single_quotes", S("{key: 'value'}"),
	    JSON_UNEXPECTED, 1 },
	{ "n_object_missing_colon", S("{\"a\" b}"), JSON_UNEXPECTED, 5 },
	{ "n_object_missing_key", S("{:\"b\"}"), JSON_UNEXPECTED, 1 },
	{ "n_object_missing_semicolon", S("{\"a\" \"b\"}"), JSON_UNEXPECTED,
	    5 },
	{ "n_object_missing_value", S("{\"a\":"), JSON_TRUNCATED, END },
	{ "n_object_no-colon", S("{\"a\""), JSON_TRUNCATED, END },
	{ "n_object_non_string_key", S("{1:1}"), JSON_UNEXPECTED, 1 },
	{ "n_object_repeated_null_null", S("{null:null,null:null}"),
	    JSON_UNEXPECTED, 1 },
	{ "n_object_several_trailing_commas", S("{\"id\":0,,,,,}"),
	    JSON_UNEXPECTED, 8 },
	{ "n_object_single_quote", S("{'a':0}"), JSON_UNEXPECTED, 1 },
	{ "n_object_trailing_comma", S("{\"id\":0,}"), JSON_UNEXPECTED, 8 },
	{ "n_object_trailing_comment", S("{\"a\":\"b\"}/**/"), JSON_TRAILING,
	    9 },
	{ "n_object_trailing_comment_slash_open", S("{\"a\":\"b\"}//"),
	    JSON_TRAILING, 9 },
	{ "n_object_two_commas_in_a_row", S("{\"a\":\"b\",,\"c\":\"d\"}"),
	    JSON_UNEXPECTED, 9 },
	{ "n_object_unquoted_key", S("{a: \"b\"}"), JSON_UNEXPECTED, 1 },
	{ "n_object_unterminated-value", S("{\"a\":\"a"), JSON_TRUNCATED,
	    END },
	{ "n_object_with_single_string", S("{ \"foo\" : \"bar\", \"a\" }"),
	    JSON_UNEXPECTED, 21 },
	{ "n_object_with_trailing_garbage", S("{\"a\": \"b\"}#"),
	    JSON_TRAILING, 10 },
	{ "n_single_space", S(" "), JSON_EMPTY, END },
	{ "n_string_1_surrogate_then_escape", S("[\"\\uD800\\\"]"),
	    JSON_SURROGATE, 2 },
	{ "n_string_1_surrogate_then_escape_u", S("[\"\\uD800\\u\"]"),
	    JSON_BAD_ESCAPE, 8 },
	{ "n_string_1_surrogate_then_escape_u1", S("[\"\\uD800\\u1\"]"),
	    JSON_BAD_ESCAPE, 8 },
	{ "n_string_1_surrogate_then_escape_u1x", S("[\"\\uD800\\u1x\"]"),
	    JSON_BAD_ESCAPE, 8 },
	{ "n_string_accentuated_char_no_quotes", S("[\303\251]"),
	    JSON_UNEXPECTED, 1 },
	{ "n_string_backslash_00", S("[\"\\\0\"]"), JSON_BAD_ESCAPE, 2 },
	{ "n_string_escape_x", S("[\"\\x00\"]"), JSON_BAD_ESCAPE, 2 },
	{ "n_string_escaped_backslash_bad", S("[\"\\\\\\\"]"),
	    JSON_TRUNCATED, END },
	{ "n_string_escaped_ctrl_char_tab", S("[\"\\\t\"]"), JSON_BAD_ESCAPE,
	    2 },
	{ "n_string_escaped_emoji", S("[\"\\\360\237\214\200\"]"),
	    JSON_BAD_ESCAPE, 2 },
	{ "n_string_incomplete_escape", S("[\"\\\"]"), JSON_TRUNCATED, END },
	{ "n_string_incomplete_escaped_character", S("[\"\\u00A\"]"),
	    JSON_BAD_ESCAPE, 2 },
	{ "n_string_incomplete_surrogate", S("[\"\\uD834\\uDd\"]"),
	    JSON_BAD_ESCAPE, 8 },
	{ "n_string_incomplete_surrogate_escape_invalid",
	    S("[\"\\uD800\\uD800\\x\"]"), JSON_SURROGATE, 2 },
	{ "n_string_invalid-utf-8-in-escape", S("[\"\\u\345\"]"),
	    JSON_BAD_ESCAPE, 2 },
	{ "n_string_invalid_backslash_esc", S("[\"\\a\"]"), JSON_BAD_ESCAPE,
	    2 },
	{ "n_string_invalid_unicode_escape", S("[\"\\uqqqq\"]"),
	    JSON_BAD_ESCAPE, 2 },
	{ "n_string_invalid_utf8_after_escape", S("[\"\\\345\"]"),
	    JSON_BAD_ESCAPE, 2 },
	{ "n_string_leading_uescaped_thinspace", S("[\\u0020\"asd\"]"),
	    JSON_UNEXPECTED, 1 },
	{ "n_string_no_quotes_with_bad_escape", S("[\\n]"), JSON_UNEXPECTED,
	    1 },
	{ "n_string_single_doublequote", S("\""), JSON_TRUNCATED, END },
	{ "n_string_single_quote", S("['single quote']"), JSON_UNEXPECTED,
	    1 },
	{ "n_string_single_string_no_double_quotes", S("abc"),
	    JSON_UNEXPECTED, 0 },
	{ "n_string_start_escape_unclosed", S("[\"\\"), JSON_TRUNCATED, END },
	{ "n_string_unescaped_ctrl_char", S("[\"a\0a\"]"), JSON_CONTROL, 3 },
	{ "n_string_unescaped_newline", S("[\"new\nline\"]"), JSON_CONTROL,
	    5 },
	{ "n_string_unescaped_tab", S("[\"\t\"]"), JSON_CONTROL, 2 },
	{ "n_string_unicode_CapitalU", S("\"\\UA66D\""), JSON_BAD_ESCAPE, 1 },
	{ "n_string_with_trailing_garbage", S("\"\"x"), JSON_TRAILING, 2 },
	{ "n_structure_angle_bracket_.", S("<.>"), JSON_UNEXPECTED, 0 },
	{ "n_structure_angle_bracket_null", S("[<null>]"), JSON_UNEXPECTED,
	    1 },
	{ "n_structure_array_trailing_garbage", S("[1]x"), JSON_TRAILING, 3 },
	{ "n_structure_array_with_extra_array_close", S("[1]]"),
	    JSON_TRAILING, 3 },
	{ "n_structure_array_with_unclosed_string", S("[\"asd]"),
	    JSON_TRUNCATED, END },
	{ "n_structure_ascii-unicode-identifier", S("a\303\245"),
	    JSON_UNEXPECTED, 0 },
	{ "n_structure_capitalized_True", S("[True]"), JSON_UNEXPECTED, 1 },
	{ "n_structure_close_unopened_array", S("1]"), JSON_TRAILING, 1 },
	{ "n_structure_comma_instead_of_closing_brace", S("{\"x\": true,"),
	    JSON_TRUNCATED, END },
	{ "n_structure_double_array", S("[][]"), JSON_TRAILING, 2 },
	{ "n_structure_end_array", S("]"), JSON_UNEXPECTED, 0 },
	{ "n_structure_lone-open-bracket", S("["), JSON_TRUNCATED, END },
	{ "n_structure_no_data", S(""), JSON_EMPTY, 0 },
	{ "n_structure_null-byte-outside-string", S("[\0]"), JSON_UNEXPECTED,
	    1 },
	{ "n_structure_number_with_trailing_garbage", S("2@"), JSON_TRAILING,
	    1 },
	{ "n_structure_object_followed_by_closing_object", S("{}}"),
	    JSON_TRAILING, 2 },
	{ "n_structure_object_unclosed_no_value", S("{\"\":"),
	    JSON_TRUNCATED, END },
	{ "n_structure_object_with_comment", S("{\"a\":/*comment*/\"b\"}"),
	    JSON_UNEXPECTED, 5 },
	{ "n_structure_object_with_trailing_garbage",
	    S("{\"a\": true} \"x\""), JSON_TRAILING, 12 },
	{ "n_structure_open_array_apostrophe", S("['"), JSON_UNEXPECTED, 1 },
	{ "n_structure_open_array_comma", S("[,"), JSON_UNEXPECTED, 1 },
	{ "n_structure_open_array_open_object", S("[{"), JSON_TRUNCATED,
	    END },
	{ "n_structure_open_array_open_string", S("[\"a"), JSON_TRUNCATED,
	    END },
	{ "n_structure_open_array_string", S("[\"a\""), JSON_TRUNCATED, END },
	{ "n_structure_open_object", S("{"), JSON_TRUNCATED, END },
	{ "n_structure_open_object_close_array", S("{]"), JSON_UNEXPECTED,
	    1 },
	{ "n_structure_open_object_comma", S("{,"), JSON_UNEXPECTED, 1 },
	{ "n_structure_open_object_open_array", S("{["), JSON_UNEXPECTED, 1 },
	{ "n_structure_open_object_string_with_apostrophes", S("{'a'"),
	    JSON_UNEXPECTED, 1 },
	{ "n_structure_single_star", S("*"), JSON_UNEXPECTED, 0 },
	{ "n_structure_trailing_#", S("{\"a\":\"b\"}#{}"), JSON_TRAILING, 9 },
	{ "n_structure_U+2060_word_joined", S("[\342\201\240]"),
	    JSON_UNEXPECTED, 1 },
	{ "n_structure_uescaped_LF_before_string", S("[\\u000A\"\"]"),
	    JSON_UNEXPECTED, 1 },
	{ "n_structure_unclosed_array_partial_null", S("[ false, nul"),
	    JSON_TRUNCATED, END },
	{ "n_structure_unclosed_array_unfinished_false", S("[ true, fals"),
	    JSON_TRUNCATED, END },
	{ "n_structure_unclosed_object", S("{\"asd\":\"asd\""),
	    JSON_TRUNCATED, END },
	{ "n_structure_unicode-identifier", S("\303\245"), JSON_UNEXPECTED,
	    0 },
	{ "n_structure_whitespace_formfeed", S("[\f]"), JSON_UNEXPECTED, 1 },
	{ "n_structure_whitespace_U+2060_word_joiner", S("[\342\201\240]"),
	    JSON_UNEXPECTED, 1 },
	{ "n_structure_nbsp_as_white_space", S("[\302\2401]"),
	    JSON_UNEXPECTED, 1 },
	/* JSONTestSuite's i_ cases that RFC 8259 lets a parser refuse. */
	{ "i_string_1st_surrogate_but_2nd_missing", S("[\"\\uDADA\"]"),
	    JSON_SURROGATE, 2 },
	{ "i_string_1st_valid_surrogate_2nd_invalid",
	    S("[\"\\uD888\\u1234\"]"), JSON_SURROGATE, 2 },
	{ "i_string_incomplete_surrogate_and_escape_valid",
	    S("[\"\\uD800\\n\"]"), JSON_SURROGATE, 2 },
	{ "i_string_incomplete_surrogates_escape_valid",
	    S("[\"\\uD800\\uD800\\n\"]"), JSON_SURROGATE, 2 },
	{ "i_string_invalid_lonely_surrogate", S("[\"\\ud800\"]"),
	    JSON_SURROGATE, 2 },
	{ "i_string_invalid_surrogate", S("[\"\\ud800abc\"]"), JSON_SURROGATE,
	    2 },
	{ "i_string_inverted_surrogates_U+1D11E", S("[\"\\uDd1e\\uD834\"]"),
	    JSON_SURROGATE, 2 },
	{ "i_string_lone_second_surrogate", S("[\"\\uDFAA\"]"),
	    JSON_SURROGATE, 2 },
	{ "i_string_UTF-8_invalid_sequence",
	    S("[\"\346\227\245\321\210\372\"]"), JSON_BAD_UTF8, 7 },
	{ "i_string_UTF8_surrogate_U+D800", S("[\"\355\240\200\"]"),
	    JSON_BAD_UTF8, 2 },
	{ "i_string_invalid_utf-8", S("[\"\377\"]"), JSON_BAD_UTF8, 2 },
	{ "i_string_iso_latin_1", S("[\"\351\"]"), JSON_BAD_UTF8, 2 },
	{ "i_string_lone_utf8_continuation_byte", S("[\"\201\"]"),
	    JSON_BAD_UTF8, 2 },
	{ "i_string_not_in_unicode_range", S("[\"\364\277\277\277\"]"),
	    JSON_BAD_UTF8, 2 },
	{ "i_string_overlong_sequence_2_bytes", S("[\"\300\257\"]"),
	    JSON_BAD_UTF8, 2 },
	{ "i_string_overlong_sequence_6_bytes",
	    S("[\"\374\203\277\277\277\277\"]"), JSON_BAD_UTF8, 2 },
	{ "i_string_overlong_3_bytes_null", S("[\"\340\200\200\"]"),
	    JSON_BAD_UTF8, 2 },
	{ "i_string_truncated-utf-8", S("[\"\340\377\"]"), JSON_BAD_UTF8, 2 },
	{ "i_string_UTF-16LE_with_BOM", S("\377\376[\0\"\0\351\0\"\0]\0"),
	    JSON_UNEXPECTED, 0 },
	{ "i_structure_UTF-8_BOM_empty_object", S("\357\273\277{}"),
	    JSON_UNEXPECTED, 0 },
	/* Cut inside a UTF-8 sequence or an escape: too early, not wrong. */
	{ "cut_in_utf8", S("[\"\342\202"), JSON_TRUNCATED, END },
	{ "cut_in_u_escape", S("[\"\\u12"), JSON_TRUNCATED, END },
	{ "cut_after_high_surrogate", S("[\"\\uD834"), JSON_TRUNCATED, END },
	{ "cut_after_high_surrogate_backslash", S("[\"\\uD834\\"),
	    JSON_TRUNCATED, END },
	{ "cut_in_low_surrogate", S("[\"\\uD834\\uDD"), JSON_TRUNCATED, END },
	{ "cut_after_minus", S("-"), JSON_TRUNCATED, END },
	{ "cut_after_point", S("1."), JSON_TRUNCATED, END },
	{ "cut_after_exponent_sign", S("1e-"), JSON_TRUNCATED, END },
	{ "cut_in_literal", S("nul"), JSON_TRUNCATED, END },
	{ "cut_after_key", S("{\"a\" "), JSON_TRUNCATED, END },
};

static size_t
want_off(size_t off, size_t len)
{
	return off == END ? len : off;
}

static void
test_accepts(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(accept); i++) {
		size_t s = 99, e = 99;
		enum json_status st = json_validate(accept[i].in,
		    accept[i].len, 64, &s, &e);

		if (st != JSON_OK)
			fail_msg("%s: %s at %zu", accept[i].name,
			    json_strerror(st), s);
		/* The value, without the white space around it. */
		assert_true(s < e && e <= accept[i].len);
		assert_true(s == 0 || accept[i].in[s - 1] == ' ' ||
		    accept[i].in[s - 1] == '\n');
		assert_true(strchr("[{\"-0123456789tfn", accept[i].in[s]));
		assert_true(strchr("]}\"0123456789el", accept[i].in[e - 1]));
	}
}

static void
test_rejects(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(reject); i++) {
		size_t s = 99, e = 99, off;
		size_t want = want_off(reject[i].off, reject[i].len);
		enum json_status st = json_validate(reject[i].in,
		    reject[i].len, 64, &s, &e), pre;

		if (st != reject[i].want || s != want)
			fail_msg("%s: got %s at %zu, want %s at %zu",
			    reject[i].name, json_strerror(st), s,
			    json_strerror(reject[i].want), want);
		assert_int_equal(e, s);
		/*
		 * The offset is where it went wrong: what comes before it
		 * starts a document (or is one, when more came after it or
		 * for "01").
		 */
		off = s;
		pre = json_validate(reject[i].in, off, 64, NULL, NULL);
		if (st == JSON_TRAILING)
			assert_int_equal(pre, JSON_OK);
		else if (st == JSON_BAD_NUMBER && pre == JSON_OK)
			assert_string_equal(reject[i].name, "top_level_0_1");
		else if (st != JSON_EMPTY && st != JSON_TRUNCATED)
			assert_true(pre == JSON_TRUNCATED ||
			    pre == JSON_EMPTY);
	}
}

/* Every proper prefix of a document that does not end in a number or a
 * literal is no document. */
static void
test_prefixes_are_not_documents(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(accept); i++) {
		const char *in = accept[i].in;
		size_t n = accept[i].len, e;

		assert_int_equal(json_validate(in, n, 64, NULL, &e), JSON_OK);
		if (strchr("]}\"", in[e - 1]) == NULL)
			continue;
		for (size_t k = 0; k < e; k++) {
			enum json_status st = json_validate(in, k, 64, NULL,
			    NULL);

			if (st != JSON_TRUNCATED && st != JSON_EMPTY)
				fail_msg("%s cut at %zu: %s", accept[i].name,
				    k, json_strerror(st));
		}
	}
}

static void
test_tokens(void **state)
{
	static const char doc[] = " {\"a\\/b\" : [1, -2.5e3, \"x\"], "
	    "\"t\":true,\"f\":false,\"n\":null, \"o\":{}}\n";
	static const struct {
		enum json_tok	 type;
		const char	*text;
		unsigned	 depth;
	} want[] = {
		{ JSON_T_OBJECT, "{", 0 },
		{ JSON_T_KEY, "a\\/b", 1 },
		{ JSON_T_ARRAY, "[", 1 },
		{ JSON_T_NUMBER, "1", 2 },
		{ JSON_T_NUMBER, "-2.5e3", 2 },
		{ JSON_T_STRING, "x", 2 },
		{ JSON_T_ARRAY_END, "]", 1 },
		{ JSON_T_KEY, "t", 1 },
		{ JSON_T_TRUE, "true", 1 },
		{ JSON_T_KEY, "f", 1 },
		{ JSON_T_FALSE, "false", 1 },
		{ JSON_T_KEY, "n", 1 },
		{ JSON_T_NULL, "null", 1 },
		{ JSON_T_KEY, "o", 1 },
		{ JSON_T_OBJECT, "{", 1 },
		{ JSON_T_OBJECT_END, "}", 1 },
		{ JSON_T_OBJECT_END, "}", 0 },
	};
	struct json_reader r;
	struct json_token t;

	(void)state;
	json_reader_init(&r, doc, sizeof(doc) - 1, 8);
	for (size_t i = 0; i < NELEM(want); i++) {
		assert_int_equal(json_next(&r, &t), JSON_OK);
		assert_int_equal(t.type, want[i].type);
		assert_int_equal(t.depth, want[i].depth);
		assert_int_equal(t.len, strlen(want[i].text));
		assert_memory_equal(t.ptr, want[i].text, t.len);
		if (t.type == JSON_T_KEY || t.type == JSON_T_STRING) {
			assert_int_equal(doc[t.off], '"');
			assert_int_equal(doc[t.end - 1], '"');
			assert_int_equal(t.end - t.off, t.len + 2);
			assert_int_equal(t.escaped, t.type == JSON_T_KEY &&
			    want[i].text[0] == 'a');
		} else {
			assert_ptr_equal(t.ptr, doc + t.off);
			assert_int_equal(t.end - t.off, t.len);
		}
	}
	assert_int_equal(json_next(&r, &t), JSON_END);
	assert_int_equal(json_next(&r, &t), JSON_END);
	assert_int_equal(json_error_offset(&r), 0);
}

static void
test_errors_are_sticky(void **state)
{
	struct json_reader r;
	struct json_token t;

	(void)state;
	json_reader_init(&r, "[1,]", 4, 8);
	assert_int_equal(json_next(&r, &t), JSON_OK);
	assert_int_equal(json_next(&r, &t), JSON_OK);
	assert_int_equal(json_next(&r, &t), JSON_UNEXPECTED);
	assert_int_equal(json_error_offset(&r), 3);
	assert_int_equal(json_next(&r, &t), JSON_UNEXPECTED);
	assert_int_equal(json_error_offset(&r), 3);
	/* Garbage after the document shows only once it is asked for. */
	json_reader_init(&r, "{} x", 4, 8);
	assert_int_equal(json_next(&r, &t), JSON_OK);
	assert_int_equal(json_next(&r, &t), JSON_OK);
	assert_int_equal(json_next(&r, &t), JSON_TRAILING);
	assert_int_equal(json_error_offset(&r), 3);
}

static void
test_depth(void **state)
{
	char deep[JSON_MAX_DEPTH + 2];
	struct json_reader r;
	struct json_token t;
	size_t off;

	(void)state;
	assert_int_equal(json_validate("[[[1]]]", 7, 3, NULL, NULL), JSON_OK);
	assert_int_equal(json_validate("[[[1]]]", 7, 2, &off, NULL),
	    JSON_TOO_DEEP);
	assert_int_equal(off, 2);
	assert_int_equal(json_validate("{\"a\":{\"b\":[]}}", 14, 2, &off,
	    NULL), JSON_TOO_DEEP);
	assert_int_equal(off, 10);
	/* depth 0: scalars only */
	assert_int_equal(json_validate("7", 1, 0, NULL, NULL), JSON_OK);
	assert_int_equal(json_validate("[]", 2, 0, NULL, NULL),
	    JSON_TOO_DEEP);
	/* the deepest a reader tracks; more is clamped to it */
	memset(deep, '[', sizeof(deep));
	assert_int_equal(json_validate(deep, JSON_MAX_DEPTH, 100000, NULL,
	    NULL), JSON_TRUNCATED);
	assert_int_equal(json_validate(deep, sizeof(deep), 100000, &off,
	    NULL), JSON_TOO_DEEP);
	assert_int_equal(off, JSON_MAX_DEPTH);
	/* each level remembers its kind: ] closes [, } closes { */
	json_reader_init(&r, "[{\"a\":[{}]}]", 12, 4);
	while (json_next(&r, &t) == JSON_OK)
		;
	assert_int_equal(json_next(&r, &t), JSON_END);
	assert_int_equal(json_validate("[{\"a\":[{}}]]", 12, 4, &off, NULL),
	    JSON_UNEXPECTED);
	assert_int_equal(off, 9);
}

static void
test_skip(void **state)
{
	static const char doc[] = "{\"skip\": {\"x\": [1, {\"y\": []}]}, "
	    "\"s\": \"v\", \"want\": 5}";
	struct json_reader r;
	struct json_token t, k;
	size_t end;

	(void)state;
	json_reader_init(&r, doc, sizeof(doc) - 1, 8);
	assert_int_equal(json_next(&r, &t), JSON_OK);
	assert_int_equal(json_skip(&r, &t, NULL), JSON_OK);
	assert_int_equal(json_next(&r, &t), JSON_END);

	json_reader_init(&r, doc, sizeof(doc) - 1, 8);
	assert_int_equal(json_next(&r, &t), JSON_OK);
	for (;;) {
		assert_int_equal(json_next(&r, &k), JSON_OK);
		assert_int_equal(k.type, JSON_T_KEY);
		assert_int_equal(json_next(&r, &t), JSON_OK);
		if (json_string_eq(&k, "want"))
			break;
		assert_int_equal(json_skip(&r, &t, &end), JSON_OK);
		assert_true(doc[end - 1] == '}' || doc[end - 1] == '"');
	}
	assert_int_equal(t.type, JSON_T_NUMBER);
	assert_int_equal(json_skip(&r, &k, NULL), JSON_TYPE);
	/* a skip that meets an error reports it */
	json_reader_init(&r, "[[1,2]", 6, 8);
	assert_int_equal(json_next(&r, &t), JSON_OK);
	assert_int_equal(json_skip(&r, &t, NULL), JSON_TRUNCATED);
}

static void
test_decode(void **state)
{
	static const char doc[] = "[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", "
	    "\"\\u00e9\\u20AC\\uD834\\uDD1E\", \"nul\\u0000x\", \"plain\"]";
	struct json_reader r;
	struct json_token t[4];
	char out[32];
	size_t n;

	(void)state;
	json_reader_init(&r, doc, sizeof(doc) - 1, 2);
	assert_int_equal(json_next(&r, &t[0]), JSON_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(json_next(&r, &t[i]), JSON_OK);
	assert_int_equal(json_string_decode(&t[0], out, sizeof(out), &n),
	    JSON_OK);
	assert_int_equal(n, 12);
	assert_string_equal(out, "a\"b\\c/d\b\f\n\r\t");
	assert_int_equal(json_string_decode(&t[1], out, sizeof(out), &n),
	    JSON_OK);
	assert_string_equal(out, "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e");
	assert_int_equal(n, 9);
	assert_int_equal(json_string_decode(&t[2], out, sizeof(out), &n),
	    JSON_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "nul\0x", 6);
	assert_int_equal(json_string_decode(&t[3], out, sizeof(out), &n),
	    JSON_OK);
	assert_string_equal(out, "plain");
	/* too small: the length needed, a cut terminated prefix */
	memset(out, 'z', sizeof(out));
	assert_int_equal(json_string_decode(&t[0], out, 4, &n),
	    JSON_NO_SPACE);
	assert_int_equal(n, 12);
	assert_string_equal(out, "a\"b");
	assert_int_equal(out[4], 'z');
	assert_int_equal(json_string_decode(&t[3], out, 5, &n),
	    JSON_NO_SPACE);
	assert_string_equal(out, "plai");
	assert_int_equal(json_string_decode(&t[3], NULL, 0, &n),
	    JSON_NO_SPACE);
	assert_int_equal(n, 5);
	assert_int_equal(json_string_decode(&t[3], out, 6, &n), JSON_OK);
	/* not a string */
	json_reader_init(&r, "[1]", 3, 2);
	assert_int_equal(json_next(&r, &t[0]), JSON_OK);
	assert_int_equal(json_string_decode(&t[0], out, sizeof(out), &n),
	    JSON_TYPE);
	assert_false(json_string_eq(&t[0], "["));
}

static void
test_string_eq(void **state)
{
	static const char doc[] = "[\"accessKeyId\", \"access\\u004beyId\", "
	    "\"\\u00e9\", \"\"]";
	struct json_reader r;
	struct json_token t[4];

	(void)state;
	json_reader_init(&r, doc, sizeof(doc) - 1, 2);
	assert_int_equal(json_next(&r, &t[0]), JSON_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(json_next(&r, &t[i]), JSON_OK);
	assert_true(json_string_eq(&t[0], "accessKeyId"));
	assert_false(json_string_eq(&t[0], "accessKeyI"));
	assert_false(json_string_eq(&t[0], "accessKeyIdx"));
	assert_false(json_string_eq(&t[0], "accesskeyid"));
	assert_true(json_string_eq(&t[1], "accessKeyId"));
	assert_true(json_string_eq(&t[2], "\xc3\xa9"));
	assert_false(json_string_eq(&t[2], "\xc3"));
	assert_true(json_string_eq(&t[3], ""));
	assert_false(json_string_eq(&t[3], "a"));
}

static void
test_number_i64(void **state)
{
	static const struct {
		const char		*in;
		enum json_status	 want;
		int64_t			 v;
	} cases[] = {
		{ "0", JSON_OK, 0 },
		{ "-0", JSON_OK, 0 },
		{ "1765197296000", JSON_OK, INT64_C(1765197296000) },
		{ "9223372036854775807", JSON_OK, INT64_MAX },
		{ "-9223372036854775808", JSON_OK, INT64_MIN },
		{ "9223372036854775808", JSON_RANGE, 0 },
		{ "-9223372036854775809", JSON_RANGE, 0 },
		{ "99999999999999999999", JSON_RANGE, 0 },
		{ "1.0", JSON_RANGE, 0 },
		{ "1e3", JSON_RANGE, 0 },
	};
	struct json_token t;

	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		int64_t v = 42;

		assert_int_equal(json_validate(cases[i].in,
		    strlen(cases[i].in), 0, NULL, NULL), JSON_OK);
		t.type = JSON_T_NUMBER;
		t.ptr = (const uint8_t *)cases[i].in;
		t.len = strlen(cases[i].in);
		assert_int_equal(json_number_i64(&t, &v), cases[i].want);
		if (cases[i].want == JSON_OK)
			assert_true(v == cases[i].v);
		else
			assert_true(v == 42);
	}
	t.type = JSON_T_STRING;
	assert_int_equal(json_number_i64(&t, &(int64_t){ 0 }), JSON_TYPE);
}

static void
test_strerror(void **state)
{
	(void)state;
	for (int st = JSON_OK; st <= JSON_RANGE; st++)
		assert_string_not_equal(json_strerror((enum json_status)st),
		    "unknown JSON status");
	assert_string_equal(json_strerror((enum json_status)99),
	    "unknown JSON status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_prefixes_are_not_documents),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_errors_are_sticky),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_string_eq),
		cmocka_unit_test(test_number_i64),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
