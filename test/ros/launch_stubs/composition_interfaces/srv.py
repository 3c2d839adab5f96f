"""The three service types launch_ros imports for composable nodes (annotations read their Request and
Response at import time; the project's launch file never loads composable nodes)."""


class _Service:
    class Request:
        pass

    class Response:
        pass


class LoadNode(_Service):
    pass


class UnloadNode(_Service):
    pass


class ListNodes(_Service):
    pass
