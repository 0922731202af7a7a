"""Report whether SAPIEN (ManiSkill3's simulator) finds a usable Vulkan device.

Run as ``python -m nnit.tasks.vulkan_check``: exit code 0 when a device is found, 1 otherwise.
SAPIEN 3 needs Vulkan even with rendering off; on CPU machines Mesa's lavapipe (>= 24.3) serves.
"""

from __future__ import annotations

import sys


def vulkan_device_name() -> str:
    """Return the name of the Vulkan device SAPIEN would use; raise RuntimeError if none."""
    import sapien  # lazy: heavy optional import

    try:
        device = sapien.Device("cpu")  # physics on CPU; rendering probes the Vulkan driver below
        del device
        renderer = sapien.render.RenderSystem()
        name = str(renderer.device.name) if hasattr(renderer, "device") else "vulkan"
        return name
    except Exception as err:  # SAPIEN raises plain RuntimeError with driver text
        raise RuntimeError(f"SAPIEN found no usable Vulkan device: {err}") from err


def main() -> int:
    try:
        print(vulkan_device_name())
        return 0
    except Exception as err:  # report any import or driver failure plainly
        print(err, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
