"""Liquibase formatted SQL changelogs, read the way Liquibase reads them.

Sources followed (liquibase/liquibase, liquibase-standard/src/main/java/liquibase/):
- parser/AbstractFormattedChangeLogParser.java and parser/core/formattedsql/FormattedSqlChangeLogParser.java: the
  header, `--changeset author:id attr:value ...`, `--rollback`, `/* liquibase rollback */` blocks, `--comment`,
  `--validCheckSum`, `--ignoreLines`, `--property`, `--preconditions` and `--precondition-<type>` lines. Every
  regular expression below is transcribed from there (Java `matches()` = Python `fullmatch`, CASE_INSENSITIVE and
  Java's ASCII `\\s`/`\\w` = `re.I | re.A`), and the lines are tried in the same order, so a line means here what it
  means to Liquibase — including its surprises (a SQL comment line `-- comment ...` inside a changeset becomes the
  changeset's comment; `-- property ...` outside the `name: value:` form is an error).
- util/StringUtil.java processMultiLineSQL/isDelimiter/mergeTokens and util/grammar/SimpleSqlGrammar.jj: statement
  splitting on `;`, on `go` or `/` at the start of a line, or on `endDelimiter`, never inside BEGIN ... END (so a
  PostgreSQL `$$ ... $$` body that holds BEGIN/END splits exactly where Liquibase splits it).
- change/AbstractSQLChange.java generateCheckSum + NormalizingStream, change/CheckSum.java, changelog/ChangeSet.java
  generateCheckSum: the checksum version 9 that Liquibase 4.22+ writes to DATABASECHANGELOG.MD5SUM.
- util/ExpressionMatcher.java, ContextExpression.java, LabelExpression.java: context and label expressions.
- database/DatabaseList.java definitionMatches: `dbms` lists (`!x`, `all`, `none`); short names are Liquibase's:
  postgresql, mysql, mariadb (MariaDB is not `mysql` to Liquibase), sqlite.

Deliberate differences, each refused rather than guessed: a changeset without SQL (Liquibase reports it, except for the
last changeset of a file, to which it silently gives the previous changeset's SQL); `--property` lines scoped by
context/labels/dbms; Liquibase Pro lines (`--include`, `--includeAll`, `--rollbackSqlFile`, `--tagDatabase`), refused
with the message Liquibase gives without a licence.
"""

from __future__ import annotations

from premigrate.model.formats.liquibase.patterns import FLAGS as FLAGS
from premigrate.model.formats.liquibase.patterns import CHECKSUM_VERSION as CHECKSUM_VERSION
from premigrate.model.formats.liquibase.patterns import DOCS as DOCS
from premigrate.model.formats.liquibase.values import Precondition as Precondition
from premigrate.model.formats.liquibase.values import Preconditions as Preconditions
from premigrate.model.formats.liquibase.values import Changeset as Changeset
from premigrate.model.formats.liquibase.split import tokenize as tokenize
from premigrate.model.formats.liquibase.split import unclosed_dollar_quote as unclosed_dollar_quote
from premigrate.model.formats.liquibase.split import split_statements as split_statements
from premigrate.model.formats.liquibase.checksum import checksum as checksum
from premigrate.model.formats.liquibase.expressions import expression_matches as expression_matches
from premigrate.model.formats.liquibase.expressions import split_expressions as split_expressions
from premigrate.model.formats.liquibase.expressions import context_matches as context_matches
from premigrate.model.formats.liquibase.expressions import label_filter_matches as label_filter_matches
from premigrate.model.formats.liquibase.expressions import dbms_matches as dbms_matches
from premigrate.model.formats.liquibase.parse import is_formatted_sql as is_formatted_sql
from premigrate.model.formats.liquibase.parse import parse_formatted_sql as parse_formatted_sql
from premigrate.model.formats.liquibase.changelog import MASTER_SUFFIXES as MASTER_SUFFIXES
from premigrate.model.formats.liquibase.changelog import load_changelog as load_changelog
from premigrate.model.formats.liquibase.changelog import RAN_EXECTYPES as RAN_EXECTYPES
from premigrate.model.formats.liquibase.changelog import RanChangeset as RanChangeset
from premigrate.model.formats.liquibase.changelog import HistoryMatch as HistoryMatch
from premigrate.model.formats.liquibase.changelog import match_history as match_history
