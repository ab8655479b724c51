"""Kyverno's custom JMESPath functions: results and errors as Kyverno's handlers give them."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from gate.errors import EvidenceError
from policies._functions import (
    JmesPathError,
    KyvernoFunctions,
    compile_expression,
    format_duration,
    go_json,
    parse_duration,
    parse_quantity,
    search,
)

ASSETS = Path(__file__).resolve().parents[3] / "tests" / "assets" / "policies" / "functions"
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.fixture
def functions() -> KyvernoFunctions:
    return KyvernoFunctions(clock=lambda: NOW, rng=random.Random(7))


def _eval(functions: KyvernoFunctions, expression: str, data: Any = None) -> Any:
    return search(expression, {} if data is None else data, functions=functions)


def _error(functions: KyvernoFunctions, expression: str, data: Any = None) -> str:
    with pytest.raises(JmesPathError) as raised:
        _eval(functions, expression, data)
    return raised.value.reason


# --------------------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("compare('a', 'b')", -1),
        ("compare('b', 'a')", 1),
        ("compare('a', 'a')", 0),
        ("equal_fold('Gate', 'GATE')", True),
        ("equal_fold('Gate', 'Gat')", False),
        ("replace('aaaa', 'a', 'b', `2`)", "bbaa"),
        ("replace('aaaa', 'a', 'b', `-1`)", "bbbb"),
        ("replace('ab', '', '-', `2`)", "-a-b"),
        ("replace_all('a.b.c', '.', '/')", "a/b/c"),
        ("to_upper('nginx:1.27')", "NGINX:1.27"),
        ("to_lower('NET_RAW')", "net_raw"),
        ("to_upper('straße')", "STRAßE"),
        ("equal_fold('Straße', 'STRASSE')", False),
        ("equal_fold('ÄB', 'äb')", True),
        ("trim('  hi  ', ' ')", "hi"),
        ("trim('xxhixx', 'x')", "hi"),
        ("trim_prefix('registry.io/app', 'registry.io/')", "app"),
        ("trim_prefix('app', 'registry.io/')", "app"),
        ("trim_suffix('app:latest', ':latest')", "app"),
        ("split('a,b,,c', ',')", ["a", "b", "", "c"]),
        ("split('abc', '')", ["a", "b", "c"]),
        ("truncate('kyverno', `3`)", "kyv"),
        ("truncate('kyverno', `-1`)", ""),
        ("truncate('kyverno', `20`)", "kyverno"),
        ("base64_encode('gate')", "Z2F0ZQ=="),
        ("base64_decode('Z2F0ZQ==')", "gate"),
        ("path_canonicalize('//etc/../var//lib/./x/')", "/var/lib/x"),
        ("path_canonicalize('a/../..')", ".."),
        ("path_canonicalize('')", ""),
        ("to_boolean('TrUe')", True),
        ("to_boolean('false')", False),
    ],
)
def test_string_function_result(functions: KyvernoFunctions, expression: str, expected: Any) -> None:
    assert _eval(functions, expression) == expected


def test_hash_functions_return_hex_digests(functions: KyvernoFunctions) -> None:
    assert _eval(functions, "md5('')") == "d41d8cd98f00b204e9800998ecf8427e"
    assert _eval(functions, "sha1('')") == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    assert (
        _eval(functions, "sha256('')") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        (
            "to_boolean('yes')",
            "JMESPath function 'to_boolean': lowercase argument must be 'true' or 'false' (provided: 'yes')",
        ),
        ("base64_decode('not base64!')", "illegal base64 data at input byte 3"),
    ],
)
def test_string_function_refuses_bad_input_with_kyvernos_message(
    functions: KyvernoFunctions, expression: str, reason: str
) -> None:
    assert _error(functions, expression) == reason


def test_argument_of_the_wrong_type_is_an_error_naming_the_function(functions: KyvernoFunctions) -> None:
    reason = _error(functions, "to_upper(`1`)")
    assert "to_upper" in reason
    assert "string" in reason


# ------------------------------------------------------------------ regular expressions and wildcards


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("regex_match('^[0-9]+$', '2400')", True),
        ("regex_match('^[0-9]+$', `2400`)", True),
        ("regex_match('^1.5$', `1.5`)", True),
        ("regex_match('ab', 'xaby')", True),
        ("regex_match('^ab$', 'ab\n')", False),
        ("regex_match('[[:digit:]]+', 'v12')", True),
        ("regex_replace_all('h.*', '720h', '')", "720"),
        ("regex_replace_all('([a-z]+)-([0-9]+)', 'app-12', '$2-$1')", "12-app"),
        ("regex_replace_all('(?P<n>[a-z]+)', 'app', '${n}s')", "apps"),
        ("regex_replace_all('(a)', 'a', '$1x')", ""),
        ("regex_replace_all('a', 'a', '$$')", "$"),
        ("regex_replace_all_literal('[0-9]', 'a1b2', '$1')", "a$1b$1"),
        ("pattern_match('nginx:*', 'nginx:1.27')", True),
        ("pattern_match('n?inx', 'nginx')", True),
        ("pattern_match('n?inx', 'ninx')", False),
        ("pattern_match('*', '')", True),
        ("pattern_match('1*', `10`)", True),
    ],
)
def test_regex_and_wildcard_functions(functions: KyvernoFunctions, expression: str, expected: Any) -> None:
    assert _eval(functions, expression) == expected


def test_invalid_regular_expression_is_an_error(functions: KyvernoFunctions) -> None:
    assert _error(functions, "regex_match('(', 'x')").startswith("error parsing regexp:")
    assert _error(functions, "regex_replace_all('[', 'x', 'y')").startswith(
        "JMESPath function 'regex_replace_all': error parsing regexp:"
    )


def test_lookaround_is_refused_as_re2_does(functions: KyvernoFunctions) -> None:
    assert (
        _error(functions, "regex_match('a(?=b)', 'ab')")
        == "error parsing regexp: invalid perl operator: `(?=`"
    )


@pytest.mark.parametrize("pattern", ["a{9999999999}", "a{1,99999999999}", "[[:alpha:]]{12345678901,}"])
def test_a_repeat_count_of_ten_digits_or_more_is_refused_as_go_refuses_it(
    functions: KyvernoFunctions, pattern: str
) -> None:
    # RE2 reads the count as literal text (the pattern matched "a{9999999999}"); Go refuses it.
    repeat = pattern[pattern.index("{") :]
    assert (
        _error(functions, f"regex_match('{pattern}', 'x')")
        == f"error parsing regexp: invalid repeat count: `{repeat}`"
    )


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("a{01}", "a{01}"),  # a leading zero: no repeat, in Go as in RE2
        (r"\{9999999999}", "{9999999999}"),
        ("[{9999999999}]", "9"),
        (r"\Qa{9999999999}\E", "a{9999999999}"),
        ("x[]{9999999999}]", "x9"),
    ],
)
def test_long_counts_that_are_no_repeat_stay_literal_text(
    functions: KyvernoFunctions, pattern: str, text: str
) -> None:
    assert _eval(functions, f"regex_match('{pattern}', @)", text) is True


def test_hostile_patterns_run_in_linear_time(functions: KyvernoFunctions) -> None:
    text = "a" * 20000 + "b"
    start = time.thread_time()
    assert _eval(functions, "regex_match('^(a+)+$', @)", text) is False
    assert _eval(functions, 'pattern_match(`"*a*a*a*a*a*a*a*a*a*a*c"`, @)', text) is False
    assert time.thread_time() - start < 1.0


# --------------------------------------------------------------------------- objects and collections


def test_label_match_requires_every_selector_label(functions: KyvernoFunctions) -> None:
    labels = {"app": "web", "tier": "front", "n": 1}
    assert _eval(functions, 'label_match(`{"app": "web"}`, @)', labels) is True
    assert _eval(functions, 'label_match(`{"app": "db"}`, @)', labels) is False
    assert _eval(functions, 'label_match(`{"n": 1.0}`, @)', labels) is True
    assert _eval(functions, "label_match(`{}`, @)", labels) is True
    assert "object" in _error(functions, "label_match('app', @)", labels)


def test_label_match_filters_a_list_as_the_corpus_uses_it(functions: KyvernoFunctions) -> None:
    data = {
        "items": [
            {"spec": {"podSelector": {"matchLabels": {"app": "web"}}}},
            {"spec": {"podSelector": {"matchLabels": {"app": "db"}}}},
        ],
        "labels": {"app": "web", "pod-template-hash": "x"},
    }
    assert (
        _eval(functions, 'length(items[?label_match(spec.podSelector.matchLabels, `{"app":"web"}`)])', data)
        == 1
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("lookup(`{\"a\": 1}`, 'a')", 1),
        ("lookup(`{\"a\": 1}`, 'b')", None),
        ("lookup(`[10, 20]`, `1`)", 20),
        ("lookup(`[10, 20]`, `5`)", None),
        ("lookup(`[10, 20]`, `-1`)", None),
        (
            "items(`{\"b\": 1, \"a\": 2}`, 'key', 'value')",
            [{"key": "a", "value": 2}, {"key": "b", "value": 1}],
        ),
        ("items(`[\"x\", \"y\"]`, 'i', 'v')", [{"i": 0, "v": "x"}, {"i": 1, "v": "y"}]),
        ('object_from_lists(`["a", "b"]`, `[1]`)', {"a": 1, "b": None}),
        ("object_from_lists(`[1.5, true]`, `[1, 2]`)", {"1.5": 1, "true": 2}),
    ],
)
def test_collection_function_result(functions: KyvernoFunctions, expression: str, expected: Any) -> None:
    assert _eval(functions, expression) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ('lookup(`{"a": 1}`, `1`)', "JMESPath function 'lookup': argument #2 is not of type String"),
        ("lookup(`[1]`, 'a')", "JMESPath function 'lookup': argument #2 is not of type Number"),
        (
            "lookup(`[1]`, `0.5`)",
            "JMESPath function 'lookup': argument #2: expected an integer number but got: 0.5",
        ),
        (
            "object_from_lists(`[{}]`, `[1]`)",
            "JMESPath function 'object_from_lists': argument #1 is not of type StringArray",
        ),
    ],
)
def test_collection_function_refuses_bad_keys(
    functions: KyvernoFunctions, expression: str, reason: str
) -> None:
    assert _error(functions, expression) == reason


# --------------------------------------------------------------------------- parsing


def test_parse_json_decodes_any_json_value(functions: KyvernoFunctions) -> None:
    assert _eval(functions, "parse_json(@)", '{"a": [1, 2.5, null, true]}') == {"a": [1, 2.5, None, True]}
    assert _eval(functions, "parse_json(@)", '"x"') == "x"
    assert _eval(functions, "parse_json(@)[1]", '["a", "b"]') == "b"
    assert _error(functions, "parse_json(@)", "{nope").startswith("invalid JSON:")
    assert _error(functions, "parse_json(@)", "NaN").startswith("invalid JSON:")


def test_parse_yaml_keeps_dates_as_strings_and_reads_yaml_1_1_booleans(functions: KyvernoFunctions) -> None:
    text = "when: 2024-01-01\nenabled: yes\nsize: 3\nlist: [a, b]\n"
    assert _eval(functions, "parse_yaml(@)", text) == {
        "when": "2024-01-01",
        "enabled": True,
        "size": 3,
        "list": ["a", "b"],
    }
    assert _error(functions, "parse_yaml(@)", "a: [unclosed").startswith("error converting YAML to JSON:")


@pytest.mark.parametrize(
    ("version", "constraint", "expected"),
    [
        ("1.2.3", ">1.0.0 <2.0.0", True),
        ("2.0.0", ">1.0.0 <2.0.0", False),
        ("1.2.3", "<1.0.0 || >=1.2.0", True),
        ("1.2.3", "1.2.x", True),
        ("1.3.0", "1.2.x", False),
        ("1.0.0-rc.1", "<1.0.0", True),
        ("1.0.0", "!1.0.0", False),
        ("v1.2.3", "0.0.0", True),
    ],
)
def test_semver_compare_uses_blang_ranges(
    functions: KyvernoFunctions, version: str, constraint: str, expected: bool
) -> None:
    assert _eval(functions, f"semver_compare('{version}', '{constraint}')") is expected


def test_semver_compare_refuses_an_invalid_range(functions: KyvernoFunctions) -> None:
    assert "Could not" in _error(functions, "semver_compare('1.0.0', '>=one')")


def test_image_normalize_fills_registry_and_tag(functions: KyvernoFunctions) -> None:
    assert _eval(functions, "image_normalize('nginx')") == "docker.io/nginx:latest"
    assert _eval(functions, "image_normalize('library/nginx:1.27')") == "docker.io/library/nginx:1.27"
    assert _eval(functions, "image_normalize('localhost:5000/app')") == "localhost:5000/app:latest"
    digest = "sha256:" + "a" * 64
    assert _eval(functions, f"image_normalize('ghcr.io/o/app:1@{digest}')") == f"ghcr.io/o/app@{digest}"
    assert _error(functions, "image_normalize('Not An Image')").startswith(
        "JMESPath function 'image_normalize': bad image:"
    )


def test_x509_decode_reads_an_rsa_certificate(functions: KyvernoFunctions) -> None:
    pem = (ASSETS / "rsa-ca.pem").read_text()
    decoded = _eval(functions, "x509_decode(@)", pem)
    assert decoded["Subject"]["CommonName"] == "gate-test-ca"
    assert decoded["Subject"]["Organization"] == ["Gate Test"]
    assert decoded["SerialNumber"] == 4242
    assert decoded["NotAfter"] == "2034-01-01T00:00:00Z"
    assert decoded["DNSNames"] == ["gate.example.com"]
    assert decoded["IsCA"] is True
    assert decoded["PublicKey"]["E"] == 65537
    assert int(decoded["PublicKey"]["N"]) > 2**2000


def test_x509_decode_refuses_non_rsa_and_non_pem(functions: KyvernoFunctions) -> None:
    assert (
        _error(functions, "x509_decode(@)", (ASSETS / "ec-ca.pem").read_text())
        == "certificate should use rsa algorithm"
    )
    assert _error(functions, "x509_decode('hello')") == "failed to decode PEM block"


def test_random_is_deterministic_with_an_injected_source() -> None:
    first = KyvernoFunctions(rng=random.Random(3))
    second = KyvernoFunctions(rng=random.Random(3))
    value = search("random('[a-z]{4}-[0-9]{2}')", {}, functions=first)
    assert value == search("random('[a-z]{4}-[0-9]{2}')", {}, functions=second)
    assert len(value) == 7
    assert value[4] == "-"
    assert value[:4].isalpha()
    assert value[5:].isdigit()
    assert _error(first, "random('')") == "no pattern provided"


def test_is_external_url_uses_ip_literals_and_the_injected_resolver() -> None:
    functions = KyvernoFunctions(
        resolver=lambda host: {"internal.corp": ["10.1.2.3"], "example.com": ["93.184.216.34"]}[host]
    )
    assert search("is_external_url('https://8.8.8.8/x')", {}, functions=functions) is True
    assert search("is_external_url('http://127.0.0.1:8080')", {}, functions=functions) is False
    assert search("is_external_url('http://192.168.1.1')", {}, functions=functions) is False
    assert search("is_external_url('https://example.com')", {}, functions=functions) is True
    assert search("is_external_url('https://internal.corp')", {}, functions=functions) is False
    without = KyvernoFunctions()
    with pytest.raises(JmesPathError, match="no resolver configured"):
        search("is_external_url('https://example.com')", {}, functions=without)


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("add(`1`, `2`)", 3),
        ("add(`1.5`, `2`)", 3.5),
        ("add('1Gi', '1024Mi')", "2Gi"),
        ("add('500m', '500m')", "1"),
        ("add('1h', '2h')", "3h0m0s"),
        ("add('1h30m', '45m0s')", "2h15m0s"),
        ("subtract(`5`, `7`)", -2),
        ("subtract('1Gi', '512Mi')", "512Mi"),
        ("subtract('1h', '90m0s')", "-30m0s"),
        ("multiply(`3`, `4`)", 12),
        ("multiply('250m', `4`)", "1"),
        ("multiply(`2`, '1Gi')", "2Gi"),
        ("multiply('1h', `1.5`)", "1h30m0s"),
        ("divide(`7`, `2`)", 3.5),
        ("divide('1Gi', '256Mi')", 4),
        ("divide('1Gi', `4`)", "256Mi"),
        ("divide('1h', '30m0s')", 2),
        ("divide('1h', `4`)", "15m0s"),
        ("modulo(`7`, `3`)", 1),
        ("modulo(`-7`, `3`)", -1),
        ("modulo('5Gi', '2Gi')", "1Gi"),
        ("modulo('90m0s', '1h')", "30m0s"),
        ("sum(`[1, 2, 3.5]`)", 6.5),
        ("sum(['1Gi', '512Mi', '512Mi'])", "2Gi"),
        ("sum(['1h', '2h'])", "3h0m0s"),
        ("round(`3.14159`, `2`)", 3.14),
        ("round(`2.5`, `0`)", 3),
        ("round(`-2.5`, `0`)", -3),
    ],
)
def test_arithmetic_on_numbers_quantities_and_durations(
    functions: KyvernoFunctions, expression: str, expected: Any
) -> None:
    assert _eval(functions, expression) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("add('1Gi', `1`)", "JMESPath function 'add': Types mismatch"),
        ("add('1h', '30m')", "JMESPath function 'add': Types mismatch"),  # '30m' parses as a quantity first
        ("add('abc', `1`)", "JMESPath function 'add': invalid operands"),
        ("subtract('1h', `1`)", "JMESPath function 'subtract': Types mismatch"),
        ("multiply('1Gi', '1Gi')", "JMESPath function 'multiply': Types mismatch"),
        ("divide(`1`, `0`)", "JMESPath function 'divide': Zero divisor passed"),
        ("divide('1Gi', '0')", "JMESPath function 'divide': Zero divisor passed"),
        ("divide(`1`, '1Gi')", "JMESPath function 'divide': Types mismatch"),
        ("modulo(`7.5`, `2`)", "JMESPath function 'modulo': Non-integer argument(s) passed for modulo"),
        ("modulo(`7`, `0`)", "JMESPath function 'modulo': Zero divisor passed"),
        ("sum(`[]`)", "JMESPath function 'sum': at least one element in the array is required"),
        ("sum(['1Gi', `1`])", "JMESPath function 'sum': Types mismatch"),
        ("round(`1.5`, `0.5`)", "JMESPath function 'round': Non-integer argument(s) passed for round off"),
        (
            "round(`1.5`, `-1`)",
            "JMESPath function 'round': %!d(MISSING) argument is out of bounds (%!d(MISSING))",
        ),
    ],
)
def test_arithmetic_errors_carry_kyvernos_messages(
    functions: KyvernoFunctions, expression: str, reason: str
) -> None:
    assert _error(functions, expression) == reason


def test_corpus_duration_limit_expression(functions: KyvernoFunctions) -> None:
    expression = "max([to_number(regex_replace_all('h.*', spec.duration, '')), to_number('2400')])"
    assert _eval(functions, expression, {"spec": {"duration": "8760h0m0s"}}) == 8760
    assert _eval(functions, expression, {"spec": {"duration": "24h"}}) == 2400


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1024Mi", "1Gi"),
        ("1500m", "1500m"),
        ("0.5", "500m"),
        ("1e3", "1e3"),
        ("1000", "1k"),
        ("1.5Gi", "1536Mi"),
        ("100Ki", "100Ki"),
    ],
)
def test_quantities_print_in_kubernetes_canonical_form(text: str, canonical: str) -> None:
    quantity = parse_quantity(text)
    assert quantity is not None
    assert quantity.text() == canonical


@pytest.mark.parametrize("text", ["", "1K", "Gi", "1.2.3", "1Gix", "--1"])
def test_non_quantities_are_rejected(text: str) -> None:
    assert parse_quantity(text) is None


@pytest.mark.parametrize(
    ("text", "nanoseconds", "printed"),
    [
        ("1h2m3.5s", 3723500000000, "1h2m3.5s"),
        ("1.5ms", 1500000, "1.5ms"),
        ("2us", 2000, "2\u00b5s"),
        ("-90s", -90000000000, "-1m30s"),
        ("0", 0, "0s"),
    ],
)
def test_go_durations_parse_and_print_like_go(text: str, nanoseconds: int, printed: str) -> None:
    assert parse_duration(text) == nanoseconds
    assert format_duration(nanoseconds) == printed


# --------------------------------------------------------------------------- time


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("time_now_utc()", "2024-05-06T07:08:09Z"),
        ("time_now()", "2024-05-06T07:08:09Z"),
        ("time_since('', '2024-05-06T07:00:00Z', '')", "8m9s"),
        ("time_since('', '2024-05-06T07:00:00Z', '2024-05-06T09:30:00Z')", "2h30m0s"),
        ("time_since('2006-01-02', '2024-05-01', '2024-05-06')", "120h0m0s"),
        ("time_add('2024-05-06T07:00:00+02:00', '90m')", "2024-05-06T08:30:00+02:00"),
        ("time_parse('2006-01-02T15:04:05Z07:00', '2021-01-02T15:04:05-07:00')", "2021-01-02T15:04:05-07:00"),
        ("time_parse('Mon Jan _2 15:04:05 2006', 'Tue Feb  3 04:05:06 2015')", "2015-02-03T04:05:06Z"),
        ("time_parse('02 Jan 06 15:04 MST', '08 Mar 21 09:15 UTC')", "2021-03-08T09:15:00Z"),
        ("time_parse('3:04PM', '11:30PM')", "0000-01-01T23:30:00Z"),
        ("time_parse('1136239445', '1136239445')", "2006-01-02T22:04:05Z"),
        ("time_utc('2024-05-06T09:08:09+02:00')", "2024-05-06T07:08:09Z"),
        ("time_diff('2024-05-06T07:00:00Z', '2024-05-07T08:00:00+01:00')", "24h0m0s"),
        ("time_before('2024-05-06T07:00:00Z', '2024-05-06T08:00:00Z')", True),
        ("time_after('2024-05-06T07:00:00Z', '2024-05-06T08:00:00Z')", False),
        ("time_between('2024-05-06T07:00:00Z', '2024-05-06T06:00:00Z', '2024-05-06T08:00:00Z')", True),
        ("time_between('2024-05-06T06:00:00Z', '2024-05-06T06:00:00Z', '2024-05-06T08:00:00Z')", False),
        ("time_truncate('2024-05-06T07:38:09Z', '1h')", "2024-05-06T07:00:00Z"),
        ("time_truncate('2024-05-06T07:38:09+05:30', '24h')", "2024-05-06T05:30:00+05:30"),
        ("time_to_cron('2024-05-06T07:08:09Z')", "8 7 6 5 1"),
    ],
)
def test_time_function_result(functions: KyvernoFunctions, expression: str, expected: Any) -> None:
    assert _eval(functions, expression) == expected


def test_time_now_keeps_the_clock_offset() -> None:
    local = datetime(2024, 5, 6, 9, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    functions = KyvernoFunctions(clock=lambda: local)
    assert search("time_now()", {}, functions=functions) == "2024-05-06T09:08:09+02:00"
    assert search("time_now_utc()", {}, functions=functions) == "2024-05-06T07:08:09Z"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        (
            "time_add('yesterday', '1h')",
            'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"',
        ),
        ("time_add('2024-05-06T07:00:00Z', '1d')", 'time: unknown unit "d" in duration "1d"'),
        ("time_add('2024-05-06T07:00:00Z', '10')", 'time: missing unit in duration "10"'),
        ("time_utc('2024-02-30T00:00:00Z')", 'parsing time "2024-02-30T00:00:00Z": day out of range'),
        (
            "time_parse('2006-01-02', '2024-13-01')",
            'parsing time "2024-13-01" as "2006-01-02": cannot parse "13-01" as "01": month out of range',
        ),
        ("time_parse('2006-01-02', '2024-01-01x')", 'parsing time "2024-01-01x": extra text: "x"'),
        ("time_parse('0', 'soon')", 'strconv.ParseInt: parsing "soon": invalid syntax'),
    ],
)
def test_time_function_refuses_bad_times_with_gos_message(
    functions: KyvernoFunctions, expression: str, reason: str
) -> None:
    assert _error(functions, expression) == reason


def test_corpus_stale_image_expression_reads_the_injected_clock(functions: KyvernoFunctions) -> None:
    created = {"imageData": {"configData": {"created": "2024-04-06T07:08:09Z"}}}
    assert _eval(functions, "time_since('', imageData.configData.created, '')", created) == "720h0m0s"


# ------------------------------------------------------------------ standard functions with Go encoding


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("to_string(`1.0`)", "1"),
        ('to_string(`{"b": [1, 2.5], "a": "<&>"}`)', '{"a":"\\u003c\\u0026\\u003e","b":[1,2.5]}'),
        ("to_string('already')", "already"),
        ("to_string(`1e21`)", "1e+21"),
        ("to_string(`0.0000001`)", "1e-7"),
        ("to_number('42')", 42),
        ("to_number('1.5e3')", 1500),
        ("to_number('1_000')", None),
        ("to_number(' 1')", None),
        ("to_number('0x10')", None),
    ],
)
def test_to_string_and_to_number_follow_go(
    functions: KyvernoFunctions, expression: str, expected: Any
) -> None:
    assert _eval(functions, expression) == expected


def test_go_json_sorts_keys_and_escapes_html() -> None:
    assert go_json({"z": None, "a": [True, 0.5, "é"]}) == '{"a":[true,0.5,"é"],"z":null}'


def test_to_upper_over_a_projection_as_the_corpus_uses_it(functions: KyvernoFunctions) -> None:
    element = {"securityContext": {"capabilities": {"drop": ["all", "Net_Raw"]}}}
    assert _eval(functions, "securityContext.capabilities.drop[].to_upper(@) || `[]`", element) == [
        "ALL",
        "NET_RAW",
    ]
    assert _eval(functions, "securityContext.capabilities.drop[].to_upper(@) || `[]`", {}) == []


# --------------------------------------------------------------------------- entry points


def test_compile_expression_caches_the_parse() -> None:
    assert compile_expression("spec.containers[0].image") is compile_expression("spec.containers[0].image")


def test_syntax_error_is_a_jmespath_error_naming_the_expression() -> None:
    with pytest.raises(JmesPathError) as raised:
        compile_expression("spec.containers[")
    assert raised.value.expression == "spec.containers["
    assert isinstance(raised.value, EvidenceError)
    assert "spec.containers[" in raised.value.message


def test_unknown_function_is_an_evaluation_error() -> None:
    with pytest.raises(JmesPathError, match="no_such_function"):
        search("no_such_function(@)", {})


def test_search_accepts_a_compiled_expression_and_uses_the_system_clock() -> None:
    compiled = compile_expression("time_now_utc()")
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    result = search(compiled, {})
    parsed = datetime.strptime(result, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= parsed <= datetime.now(UTC)


def test_standard_functions_still_work(functions: KyvernoFunctions) -> None:
    data = {"containers": [{"name": "b"}, {"name": "a"}]}
    assert _eval(functions, "sort(containers[].name)", data) == ["a", "b"]
    assert _eval(functions, "contains(keys(@), 'containers')", data) is True
    assert _eval(functions, "join(',', containers[].name)", data) == "b,a"


def test_parse_yaml_types_scalars_as_kubernetes_does(functions: KyvernoFunctions) -> None:
    text = "window: 1:30\nlimit: 1e3\nmode: 0o17\ndata: !!binary aGVsbG8=\n"
    assert _eval(functions, "parse_yaml(@)", text) == {
        "window": "1:30",
        "limit": 1000.0,
        "mode": 15,
        "data": "hello",
    }
    assert _error(functions, "parse_yaml(@)", "a: .nan").endswith("json: unsupported value: NaN")


def test_parse_yaml_gives_json_values_for_explicit_tags_as_the_policy_loader_does(
    functions: KyvernoFunctions,
) -> None:
    text = "when: !!timestamp 2024-01-01\nbig: !!int 99999999999999999999999\nset: !!set {a, b}\n"
    assert _eval(functions, "parse_yaml(@)", text) == {
        "when": "2024-01-01",
        "big": 1e23,
        "set": {"a": None, "b": None},
    }
