"""The reading rules of services/query/answer/claims.py, each with a hard
negative: a sentence the rule must still refuse, built to fool it."""

from __future__ import annotations

import pytest

from services.query.answer.attribution import attribute, read_source
from services.query.answer.claims import canonical, stem, topic_names
from shared.protocol import SentenceSupport

SUPPORTED, UNSUPPORTED = SentenceSupport.SUPPORTED, SentenceSupport.UNSUPPORTED


def verdict(sentence: str, source: str) -> SentenceSupport:
    (only,) = attribute(sentence, [read_source(source)])
    return only.support


@pytest.mark.parametrize(
    "words",
    [
        ("use", "used", "using", "uses"),
        ("modify", "modified", "modifies"),
        ("run", "running", "runs"),
        ("reach", "reached", "reachable"),
        ("embedded", "embedding"),  # "embed" reads as "emb": a known miss
        ("apply", "applies", "applied"),
    ],
)
def test_inflections_share_a_stem(words: tuple[str, ...]) -> None:
    assert len({stem(w) for w in words}) == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [("need", "ne"), ("apply", "app"), ("table", "t"), ("disable", "dis"), ("process", "proces")],
)
def test_short_words_keep_what_is_not_a_suffix(a: str, b: str) -> None:
    assert stem(a) != b


def test_synonyms_read_as_one_word_but_opposites_stay_apart() -> None:
    assert canonical(stem("raised")) == canonical(stem("increases"))
    assert canonical(stem("supersedes")) == canonical(stem("overrides"))
    assert canonical(stem("lowered")) != canonical(stem("raised"))


RUNTIME = "The maximum length can be lowered at run-time using the sqlite3_limit() interface."


def test_a_hyphenated_word_holds_its_parts() -> None:
    assert verdict(
        "You can lower the maximum length at run time with sqlite3_limit().", RUNTIME
    ) == (SUPPORTED)
    # hard negative: each part is a word of its own that must match
    compile_time = "It can be lowered at compile-time."
    assert verdict("It can be lowered at run time.", compile_time) == UNSUPPORTED
    assert verdict("It can be lowered at compile time.", compile_time) == SUPPORTED


def test_a_synonym_backs_a_paraphrase_and_an_opposite_synonym_does_not() -> None:
    source = "You can increase this value at compile time."
    assert verdict("You can raise this value at compile time.", source) == SUPPORTED
    assert verdict("You can reduce this value at compile time.", source) == UNSUPPORTED


UNREACHABLE = "This limit is unreachable since the maximum database size will be reached first."


def test_a_negative_prefix_in_the_source_says_not() -> None:
    assert verdict(
        "This limit can't be reached, since the maximum database size is reached first.",
        UNREACHABLE,
    ) == (SUPPORTED)
    # hard negative: the same words, the prefix's "not" dropped
    assert verdict("This limit is reachable.", "This limit is unreachable.") == UNSUPPORTED


ALIAS = (
    "In SQLite, a column with type INTEGER PRIMARY KEY is an alias for the ROWID "
    "(except in WITHOUT ROWID tables) which is always a 64-bit signed integer."
)


def test_a_word_the_source_both_negates_and_affirms_is_not_turned_around() -> None:
    assert verdict(
        "An INTEGER PRIMARY KEY column is an alias for the ROWID, a 64-bit signed integer.", ALIAS
    ) == (SUPPORTED)
    # hard negative: the answer's own negation still counts
    assert (
        verdict("An INTEGER PRIMARY KEY column is not an alias for the ROWID.", ALIAS)
        == UNSUPPORTED
    )


TRIGGERS = (
    "Beginning with version 3.7.0, recursive triggers are enabled by default "
    "but can be manually disabled using PRAGMA recursive_triggers."
)


def test_the_part_of_a_sentence_sharing_the_clauses_words_decides_its_polarity() -> None:
    assert verdict(
        "From version 3.7.0 on, recursive triggers are disabled by default.", TRIGGERS
    ) == (UNSUPPORTED)
    assert verdict(
        "From version 3.7.0 on, recursive triggers are enabled by default.", TRIGGERS
    ) == (SUPPORTED)
    # hard negative for the rule: the other part may say the opposite word
    assert (
        verdict(
            "Recursive triggers can be manually disabled using PRAGMA recursive_triggers.", TRIGGERS
        )
        == SUPPORTED
    )


SIZES = (
    "Within a single database, every page is the same size, but different databases "
    "can have page sizes that are powers of two between 512 and 65536."
)


def test_a_part_sharing_fewer_words_does_not_decide() -> None:
    assert verdict("Every page in a single database is the same size.", SIZES) == SUPPORTED
    assert verdict("Different pages within a single database can have different sizes.", SIZES) == (
        UNSUPPORTED
    )


WAL = "However, since there is only one WAL file, there can only be one writer at a time."


def test_a_count_of_the_same_thing_must_agree() -> None:
    assert verdict("There can be several writers at a time, one per WAL file.", WAL) == UNSUPPORTED
    assert verdict("There can be multiple writers at a time.", WAL) == UNSUPPORTED
    # hard negative: "one" counting something else is no contradiction
    assert (
        verdict("Since there is one WAL file, only one writer can run at a time.", WAL) == SUPPORTED
    )


QUOTED = "The mathematical expression must be enclosed in double quotation marks."


def test_must_and_need_are_one_word_for_polarity() -> None:
    assert verdict(
        "The expression does not need to be enclosed in double quotation marks.", QUOTED
    ) == (UNSUPPORTED)
    assert (
        verdict("The expression needs to be enclosed in double quotation marks.", QUOTED)
        == SUPPORTED
    )
    # hard negative: "need not" in the source is the same denial the answer makes
    optional = "The expression need not be enclosed in double quotation marks."
    assert verdict(
        "The expression does not need to be enclosed in double quotation marks.", optional
    ) == (SUPPORTED)


def test_a_negation_reaches_past_try_to() -> None:
    source = (
        "In security-sensitive applications it is best not to try to increase the maximum length."
    )
    assert verdict(
        "In security-sensitive applications it is best to increase the maximum length.", source
    ) == (UNSUPPORTED)
    assert verdict(
        "In security-sensitive applications it is best not to increase the maximum length.", source
    ) == (SUPPORTED)


def test_allow_and_prevent_are_opposites() -> None:
    source = "The purpose of AUTOINCREMENT is to prevent the reuse of ROWIDs of deleted rows."
    assert verdict(
        "The purpose of AUTOINCREMENT is to allow the reuse of ROWIDs of deleted rows.",
        source,
    ) == (UNSUPPORTED)
    assert verdict(
        "The purpose of AUTOINCREMENT is to forbid the reuse of ROWIDs of deleted rows.",
        source,
    ) == (SUPPORTED)


def test_raising_or_lowering_is_changing() -> None:
    source = "The max_page_count PRAGMA can be used to raise or lower this limit at run-time."
    assert (
        verdict("The max_page_count PRAGMA can change this limit at run time.", source) == SUPPORTED
    )
    assert verdict(
        "The limit cannot be changed at run time with the max_page_count PRAGMA.", source
    ) == (UNSUPPORTED)


FUNCTION_ARG = (
    "The SQLITE_MAX_FUNCTION_ARG parameter determines the maximum number of parameters "
    "that can be passed to an SQL function. The default value of this limit is 100. "
    "The maximum number of attached databases is 10."
)


def test_a_sentence_pointing_back_goes_on_about_the_one_before() -> None:
    assert verdict("SQLITE_MAX_FUNCTION_ARG defaults to 100.", FUNCTION_ARG) == SUPPORTED
    # hard negative: a value of the next statement is not the named limit's
    assert verdict("SQLITE_MAX_FUNCTION_ARG defaults to 10.", FUNCTION_ARG) == UNSUPPORTED


JOURNAL = (
    "The COMMIT occurs when the rollback journal is deleted. "
    "The WAL approach inverts this. A COMMIT occurs when a record is appended to the WAL."
)


def test_a_sentence_naming_its_own_subject_does_not_go_on() -> None:
    # "this" points back, but the sentence is about WAL, not the journal
    assert verdict(
        "With a rollback journal, the COMMIT occurs when the WAL file is deleted.", JOURNAL
    ) == (UNSUPPORTED)
    assert verdict(
        "With a rollback journal, the COMMIT occurs when the journal is deleted.", JOURNAL
    ) == (SUPPORTED)


COLON = (
    "You can raise or lower this value at compile-time using a command-line option like this:\n\n"
    "-DSQLITE_MAX_LENGTH=123456789\n\n"
    "The current implementation will only support a string or BLOB length up to 2147483647."
)


def test_a_sentence_ending_in_a_colon_goes_on_in_what_follows() -> None:
    assert (
        verdict(
            "You can change it at compile time with a command-line option such as "
            "-DSQLITE_MAX_LENGTH=123456789.",
            COLON,
        )
        == SUPPORTED
    )
    # hard negative: the flag's value is still checked
    assert (
        verdict(
            "You can change it at compile time with a command-line option such as "
            "-DSQLITE_MAX_LENGTH=2147483647.",
            COLON,
        )
        == UNSUPPORTED
    )


TYPES = (
    "The <type> must be specified as one of:\n\nBOOL Boolean ON/OFF value. "
    "cmake-gui(1) offers a checkbox.\n\nFILEPATH Path to a file on disk. "
    "cmake-gui(1) offers a file dialog."
)


def test_a_leading_modifier_is_part_of_the_claim_it_modifies() -> None:
    # "For the BOOL type" alone is backed by the list's first line; what it
    # says of BOOL is not
    assert verdict("For the BOOL type, cmake-gui(1) offers a file dialog.", TYPES) == UNSUPPORTED
    assert verdict("For FILEPATH, the value is a path to a file on disk.", TYPES) == SUPPORTED


def test_a_one_word_page_title_names_what_the_sources_are_about() -> None:
    assert "@message" in topic_names(["message — CMake 3.25.1 Documentation"])
    # hard negative: a title that is a phrase names no single subject
    assert "@limits" not in topic_names(["limits of a database — overview"])
    source = read_source("WARNING CMake Warning, continue processing.")
    titles = ["message — CMake 3.25.1 Documentation"]
    (named,) = attribute(
        "message(WARNING) gives a CMake Warning and processing continues.", [source], titles
    )
    (other,) = attribute(
        "fail(WARNING) gives a CMake Warning and processing continues.", [source], titles
    )
    assert (named.support, other.support) == (SUPPORTED, UNSUPPORTED)


def test_keeping_is_staying_and_changing_is_its_opposite() -> None:
    source = "The previous state of the variable's value stays the same in the current scope."
    assert (
        verdict("In the current scope, the variable keeps its previous value.", source) == SUPPORTED
    )
    assert verdict("In the current scope, the variable changes its previous value.", source) == (
        UNSUPPORTED
    )
    assert stem("variables") == stem("variable")


def test_a_number_in_words_or_scaled_is_the_number() -> None:
    source = "The study counted 55,000,000 physical source lines of code."
    assert verdict("The study counted 55 million physical source lines of code.", source) == (
        SUPPORTED
    )
    # hard negative: a number word that is not the source's
    fifty = "The installer raised the number of available translations to over fifty."
    assert verdict("The installer raised the number of translations to over fifty.", fifty) == (
        SUPPORTED
    )
    assert verdict("The installer raised the number of translations to over fifteen.", fifty) == (
        UNSUPPORTED
    )
    assert verdict("The study counted 55 thousand physical source lines of code.", source) == (
        UNSUPPORTED
    )


def test_a_number_said_in_several_words_is_one_number() -> None:
    source = "Debconf4 had over one hundred and sixty participants from twenty six countries."
    assert verdict("Debconf4 had over 160 participants from 26 countries.", source) == SUPPORTED
    assert verdict("Debconf4 had over 160 participants from 6 countries.", source) == UNSUPPORTED


def test_a_date_or_a_grouped_number_is_not_split_at_its_comma() -> None:
    source = (
        "Debian 2.0 was released on July 24th, 1998. It shipped the new dpkg tool. "
        "It supported the Motorola 68000 architecture. It added 9,000 new packages."
    )
    joined = (
        "Debian 2.0 was released on July 24th, 1998, and supported the Motorola 68000 architecture."
    )
    assert verdict(joined, source) == SUPPORTED
    both = "It added 9,000 new packages, and it supported the Motorola 68000 architecture."
    assert verdict(both, source) == SUPPORTED
    # hard negative: the year still has to be the source's
    assert verdict(joined.replace("1998", "1999"), source) == UNSUPPORTED


def test_a_possessive_name_is_the_name() -> None:
    source = "The University of Twente network operations center caught fire."
    assert verdict("The University of Twente's network operations center caught fire.", source) == (
        SUPPORTED
    )
    assert verdict(
        "The University of Utrecht's network operations center caught fire.", source
    ) == (UNSUPPORTED)


def test_two_values_of_the_same_thing_exchanged_are_a_swap() -> None:
    source = "After three months, I uploaded 200 packages from 250 available packages."
    assert verdict(
        "After three months he uploaded 200 packages from 250 available packages.", source
    ) == (SUPPORTED)
    assert verdict(
        "After three months he uploaded 250 packages from 200 available packages.", source
    ) == (UNSUPPORTED)


LEADERS = (
    "Steve McIntyre led Debian from April 2008 until April 2010.\n\n"
    "Stefano Zacchiroli led Debian from April 2010 until April 2013."
)


def test_values_are_said_of_the_subject_that_names_them() -> None:
    assert verdict("Stefano Zacchiroli led Debian from April 2010 until April 2013.", LEADERS) == (
        SUPPORTED
    )
    # hard negative: the dates are in the passage, beside the previous leader's name
    assert verdict("Stefano Zacchiroli led Debian from April 2008 until April 2010.", LEADERS) == (
        UNSUPPORTED
    )


DEBCONF = (
    "Debconf4 took place in Porto Alegre with over 160 participants from twenty six countries."
)


def test_a_quantity_word_must_allow_the_sources_count() -> None:
    assert verdict("Debconf4 in Porto Alegre drew participants from many countries.", DEBCONF) == (
        SUPPORTED
    )
    # hard negative: a handful is not twenty-six
    assert verdict(
        "Debconf4 in Porto Alegre drew participants from a handful of countries.", DEBCONF
    ) == (UNSUPPORTED)
    # a measure is not a count: "64-bit" does not count the bits of "32-bit software"
    both = "It installs both 64 and 32-bit software on the same machine."
    assert verdict("It installs 64-bit and 32-bit software on the same machine.", both) == SUPPORTED


STRETCH = (
    "Support for the powerpc architecture was dropped in this release, "
    "whereas the mips64el architecture was introduced."
)


def test_each_part_of_a_clause_that_turns_keeps_its_polarity() -> None:
    assert verdict(
        "Stretch dropped support for the powerpc architecture, while mips64el was added.", STRETCH
    ) == (SUPPORTED)
    # hard negative: both sides are said, but of the other architecture each
    assert verdict(
        "Stretch added support for the powerpc architecture, while mips64el was dropped.", STRETCH
    ) == (UNSUPPORTED)


def test_merging_is_the_opposite_of_separating_and_keeping_of_replacing() -> None:
    quilt = 'The new "3.0 (quilt)" format separates the Debian patches from the source code.'
    assert verdict(
        'The "3.0 (quilt)" format separates the Debian patches from the source code.', quilt
    ) == (SUPPORTED)
    assert verdict(
        'The "3.0 (quilt)" format merges the Debian patches into the source code.', quilt
    ) == (UNSUPPORTED)
    installer = "The new installer replaced the aging boot-floppies installer."
    assert verdict("The new installer replaced the old boot-floppies installer.", installer) == (
        SUPPORTED
    )
    assert verdict("The new installer kept the aging boot-floppies installer.", installer) == (
        UNSUPPORTED
    )


POOLS = "Packages from unstable that are said to be stable moved to testing after a few weeks."


def test_from_and_to_keep_their_ends() -> None:
    assert verdict("Packages move from unstable to testing after a few weeks.", POOLS) == SUPPORTED
    # hard negative: the same words, the ends exchanged
    assert verdict("Packages move from testing to unstable after a few weeks.", POOLS) == (
        UNSUPPORTED
    )
    # a word at both ends decides nothing
    span = "GNU sponsored it for one year (November 1994 to November 1995)."
    assert verdict("GNU sponsored it from November 1994 until November 1995.", span) == SUPPORTED


def test_a_span_of_time_is_a_value() -> None:
    source = "Debian 2.1 was released after being delayed by a week when a few issues arose."
    assert verdict("The release was delayed by a week because a few issues arose.", source) == (
        SUPPORTED
    )
    # hard negative: every other word is the source's
    assert verdict("The release was delayed by a month because a few issues arose.", source) == (
        UNSUPPORTED
    )


def test_a_manner_word_or_a_light_verb_may_come_and_go() -> None:
    source = "Commands are recorded."
    assert verdict("Commands are simply recorded.", source) == SUPPORTED
    assert verdict("Commands get recorded.", source) == SUPPORTED
    # hard negative: an adverb of time is the fact, not a manner
    assert verdict("Commands are immediately recorded.", source) == UNSUPPORTED


OFFICERS = (
    "Three new members were chosen: Martin Schulze (Vice President), Dale Scheetz (Secretary), "
    "and Nils Lohner (Treasurer)."
)


def test_what_a_parenthesis_says_a_name_is_stays_with_that_name() -> None:
    assert verdict("Dale Scheetz became Secretary.", OFFICERS) == SUPPORTED
    assert verdict("Nils Lohner became Treasurer.", OFFICERS) == SUPPORTED
    # hard negative: both names are in the passage, each in another pair
    assert verdict("Dale Scheetz became Treasurer.", OFFICERS) == UNSUPPORTED


def test_a_name_answers_to_its_initials() -> None:
    source = (
        "SPI is supported by Software in the Public Interest, a non-profit in the United States."
    )
    spi = "Debian motivated the formation of Software in the Public Interest, Inc."
    assert verdict("Debian motivated the formation of SPI.", spi) == SUPPORTED
    assert verdict("It is a non-profit in the US.", source) == SUPPORTED
    # hard negative: initials of no name in the passage
    assert verdict("Debian motivated the formation of the FSF.", spi) == UNSUPPORTED


STRETCH_LIST = (
    "Debian 9.0 (Stretch) was released June 17th, 2017.\n\n"
    "New features and updated software packages included:\n\n"
    "GNOME desktop environment 3.22\n\n"
    "KDE Plasma Workspaces and KDE Applications 5.8\n\n"
    "LibreOffice 5.2.7\n\n"
    "Linux 4.9\n\n"
    "MariaDB 10.1 and more than 51,000 other ready-to-use software packages."
)


def test_a_list_of_things_with_their_values_is_read_item_by_item() -> None:
    assert verdict(
        "It shipped Linux 4.9, GNOME 3.22, KDE Plasma 5.8 and LibreOffice 5.2.7.", STRETCH_LIST
    ) == (SUPPORTED)
    # hard negative: each item keeps its own value
    assert verdict(
        "It shipped Linux 4.9, GNOME 3.22, KDE Plasma 5.2.7 and LibreOffice 5.8.", STRETCH_LIST
    ) == (UNSUPPORTED)


@pytest.mark.parametrize(
    "remark",
    ["Quite a story from the early days!", "Stay safe out there!", "Fun bit of trivia, isn't it?"],
)
def test_a_short_exclamation_without_a_claim_is_a_remark(remark: str) -> None:
    assert verdict(remark, RUNTIME) == SentenceSupport.NO_CLAIM


@pytest.mark.parametrize(
    "claim",
    [
        "Windows is not supported!",  # a name and a negation
        "It is much faster now!",  # one side of an opposite pair
        "The maximum length can be lowered at run time!",  # more words than a remark has
        "It is never lowered, isn't it?",
    ],
)
def test_an_exclamation_that_says_something_is_a_claim(claim: str) -> None:
    assert verdict(claim, RUNTIME) != SentenceSupport.NO_CLAIM


def test_a_negation_reaches_past_a_manner_word_but_not_past_a_time_word() -> None:
    source = "Debian 1.0 was released."
    assert verdict("Debian 1.0 was officially released.", source) == SUPPORTED
    # hard negative: "never officially released" denies the release, not the manner
    assert verdict("Debian 1.0 was never officially released.", source) == UNSUPPORTED
    # "not previously used" says unused: the negation stops at a word of time
    ids = "It picks a ROWID that was not previously used."
    assert verdict("It picks a ROWID that was previously used.", ids) == UNSUPPORTED


def test_earlier_is_previous_and_a_version_number_is_a_version() -> None:
    source = "The X-Windows packages were reorganized from previous releases."
    assert verdict("The X-Windows packages were reorganized from earlier releases.", source) == (
        SUPPORTED
    )
    assert verdict("The X-Windows packages were reorganized for later releases.", source) == (
        UNSUPPORTED
    )
    assert verdict("The version of Perl was 5.28.", "It shipped Perl 5.28.") == SUPPORTED
    # hard negative: a version word does not make another number a version
    assert verdict("The version of Perl was 5.28.", "It shipped 528 Perl modules.") == UNSUPPORTED


def test_from_and_to_are_compared_only_where_both_ends_are_said() -> None:
    source = "The X-Windows packages were reorganized from previous releases."
    assert verdict(
        "The X-Windows packages were reorganized compared to previous releases.", source
    ) == (SUPPORTED)


def test_a_part_read_alone_does_not_outweigh_a_passage_backing_the_whole_sentence() -> None:
    first = "Debian 1.0 was never released: InfoMagic shipped a development release as 1.0 in 1995."
    other = "Debian 1.0 was released in 1996 by the project."
    sentence = "Debian 1.0 was never released: InfoMagic shipped an early release as 1.0 in 1995."
    (only,) = attribute(sentence, [read_source(first), read_source(other)])
    assert only.support == SUPPORTED and only.sources == [1]
    # hard negative: the part alone still meets its opposite when nothing backs the whole
    (alone,) = attribute(sentence, [read_source(other)])
    assert alone.support == UNSUPPORTED
