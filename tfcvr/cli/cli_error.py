class CLIError(Exception):
    """An error the user can fix; `tfcvr` prints it as one line and exits
    with status 2.

    In a module of its own (not `tfcvr.cli.main`) so that the class a
    command raises is the one `main` catches also under
    `python -m tfcvr.cli.main`, where `main` runs as `__main__`.
    """
