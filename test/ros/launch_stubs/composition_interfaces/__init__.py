"""Stand-in for composition_interfaces (no wheel exists): launch_ros.actions imports its services when
it is imported; nodes started with launch_ros.actions.Node never use them."""
