"""The line patterns of a formatted SQL changelog (AbstractFormattedChangeLogParser), Liquibase's own regexes."""

from __future__ import annotations

import re



FLAGS = re.IGNORECASE | re.ASCII
CHECKSUM_VERSION = 9
DOCS = "https://docs.liquibase.com/concepts/changelogs/sql-format.html"


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, FLAGS)


# -- line patterns (AbstractFormattedChangeLogParser) -------------------------------------------------------------
FIRST_LINE = _p(r"^\s*--\s*liquibase\s*formatted.*")
PROPERTY = _p(r"\s*--[\s]*property\s+(.*:.*)\s+(.*:.*).*")
ALT_PROPERTY_ONE = _p(r"\s*?[-]+\s*property\s.*")
CHANGE_SET = _p(r'\s*--[\s]*changeset\s+("[^"]+"|[^:]+):\s*("[^"]+"|\S+).*')
ALT_CHANGE_SET_ONE = _p(r"-[\s]*changeset\s.*")
ALT_CHANGE_SET_NO_OTHER_INFO = _p(r"\s*--[\s]*changeset[\s]*.*$")
ROLLBACK = _p(r"\s*--[\s]*rollback (.*)")
ALT_ROLLBACK_ONE = _p(r"\s*-[\s]*rollback\s.*")
PRECONDITIONS = _p(r"\s*--[\s]*preconditions(.*)")
ALT_PRECONDITIONS_ONE = _p(r"\s*-[\s]*preconditions\s.*")
PRECONDITION = _p(r"\s*--[\s]*precondition\-([a-zA-Z0-9-]+) (.*)")
INVALID_EMPTY_PRECONDITION = _p(r"\s*--[\s]*precondition\-([a-zA-Z0-9-]+)")
ALT_PRECONDITION_ONE = _p(r"\s*-[\s]*precondition(.*)")
COMMENT = _p(r"--[\s]*comment:? (.*)")
ALT_COMMENT_PLURAL = _p(r"--[\s]*comments:? (.*)")
ALT_COMMENT_ONE = _p(r"-[\s]*comment:? (.*)")
VALID_CHECK_SUM = _p(r"--[\s]*validCheckSum:? (.*)")
ALT_VALID_CHECK_SUM_ONE = _p(r"^-[\s]*validCheckSum(.*)$")
IGNORE_LINES = _p(r"--[\s]*ignoreLines:(\w+)")
ALT_IGNORE_LINES_ONE = _p(r"-[\s]*?ignoreLines:(\w+).*$")
ALT_IGNORE = _p(r"--[\s]*ignore:(\w+)")
ROLLBACK_MULTI_LINE_START = _p(r"\s*/\*\s*liquibase\s*rollback\s*$")
ROLLBACK_MULTI_LINE_END = _p(r".*\s*\*/\s*$")
# attributes of a --changeset line
STRIP_COMMENTS = _p(r".*stripComments:(\w+).*")
SPLIT_STATEMENTS = _p(r".*splitStatements:(\w+).*")
ROLLBACK_SPLIT_STATEMENTS = _p(r".*rollbackSplitStatements:(\w+).*")
END_DELIMITER = _p(r".*\bendDelimiter:(\S*).*")
ROLLBACK_END_DELIMITER = _p(r".*\brollbackEndDelimiter:(\S*).*")
RUN_WITH = _p(r".*runWith:([\w\$\{\}]+).*")
RUN_ON_CHANGE = _p(r".*runOnChange:(\w+).*")
RUN_ALWAYS = _p(r".*runAlways:(\w+).*")
CONTEXT = _p(r'.*context:(".*?"|\S*).*')
CONTEXT_FILTER = _p(r'.*contextFilter:(".*?"|\S*).*')
LOGICAL_FILE_PATH = _p(r".*logicalFilePath:(\S*).*")
LABELS = _p(r'.*labels:(".*?"|\S*).*')
RUN_IN_TRANSACTION = _p(r".*runInTransaction:(\w+).*")
DBMS = _p(r".*dbms:([^,][\w!,]+).*")
IGNORE = _p(r".*ignore:(\w*).*")
FAIL_ON_ERROR = _p(r".*failOnError:(\w+).*")
ON_FAIL = _p(r".*onFail:(\w+).*")
ON_ERROR = _p(r".*onError:(\w+).*")
ON_UPDATE_SQL = _p(r".*onUpdateSQL:(\w+).*")
ON_SQL_OUTPUT = _p(r".*onSqlOutput:(\w+).*")
ROLLBACK_CHANGE_SET_ID = _p(r".*changeSetId:(\S+).*")
ROLLBACK_CHANGE_SET_AUTHOR = _p(r".*changesetAuthor:(\S+).*")
ROLLBACK_CHANGE_SET_PATH = _p(r".*changesetPath:(\S+).*")
SQL_CHECK_RESULT = [_p(r"^(?:expectedResult:)?(\w+) (.*)"), _p(r"^(?:expectedResult:)?'([^']+)' (.*)"),
                    _p(r'^(?:expectedResult:)?"([^"]+)" (.*)')]
NAME = _p(r".*name:\s*(\S+).*")
VALUE = _p(r".*value:\s*(\S+).*")
TABLE_NAME = _p(r".*table:(\w+).*")
VIEW_NAME = _p(r".*view:(\w+).*")
SCHEMA_NAME = _p(r".*schema:(\w+).*")
# InvalidFormattedSqlPatternsForOssUtil: Liquibase Pro lines
PRO_LINES = [("rollbackSqlFile", _p(r"\s*--[\s]*rollbackSqlFile[\s]+(.*)")),
             ("tagDatabase", _p(r"\s*?--[\s]*?tagDatabase:[\s]+?(.*)")),
             ("include", _p(r"\s*--[\s]*include[\s]+file:.*")),
             ("includeAll", _p(r"\s*--[\s]*includeAll[\s]+(.*)"))]
FAIL_OPTIONS = ("HALT", "CONTINUE", "MARK_RAN", "WARN")
ERROR_OPTIONS = ("HALT", "CONTINUE", "MARK_RAN", "WARN")
