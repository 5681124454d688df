"""The one error the analysis raises on unusable input; the CLI turns it into exit code 2."""


class InputError(Exception):
    """Input the analysis cannot use; the message is one line that says what and where."""
