"""AppSpecError: what is wrong with an AppSpec file and where (file, key path, line), in a user's words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppSpecProblem:
    """One thing wrong with an AppSpec file.

    ``key_path`` is written the way a user navigates the file (``hooks.AfterInstall[0].timeout``); it is empty
    for problems with the file as a whole. ``line`` is 1-based, or None when the format does not tell.
    """

    source_name: str
    key_path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.source_name
        if self.key_path:
            where += f": {self.key_path}"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class AppSpecError(Exception):
    """An AppSpec file that cannot be used, with every problem found in it.

    The attributes describe the first problem (the one a user should fix first): ``source_name``,
    ``key_path``, ``line`` and ``reason`` (what is wrong); ``message`` is the whole text, every problem
    included. ``problems`` holds all of them, in file order as far as it is known.
    """

    def __init__(self, problems: list[AppSpecProblem] | tuple[AppSpecProblem, ...]) -> None:
        if not problems:
            raise ValueError("AppSpecError needs at least one problem")
        self.problems: tuple[AppSpecProblem, ...] = tuple(problems)
        first = self.problems[0]
        self.source_name: str = first.source_name
        self.key_path: str = first.key_path
        self.line: int | None = first.line
        self.reason: str = first.message
        text = str(first)
        if len(self.problems) > 1:
            others = "\n".join(f"  {problem}" for problem in self.problems[1:])
            text += f"\n{len(self.problems) - 1} more problem(s):\n{others}"
        self.message: str = text
        super().__init__(text)

    def __reduce__(self) -> tuple[type[AppSpecError], tuple[tuple[AppSpecProblem, ...]]]:
        # Rebuilt from the problems, so that the error survives pickling (e.g. across processes).
        return (type(self), (self.problems,))

    @classmethod
    def single(cls, source_name: str, key_path: str, line: int | None, message: str) -> AppSpecError:
        """An error with exactly one problem."""
        return cls([AppSpecProblem(source_name, key_path, line, message)])
