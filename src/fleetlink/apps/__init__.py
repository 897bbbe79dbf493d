"""The stream apps (Quix Streams): the runtime and one wing per app."""

import importlib
import warnings

# Quix Streams imports confluent-kafka's schema registry, which imports authlib's httpx client,
# and authlib warns on every start about code fleetlink never calls. authlib installs an
# "always" filter for its warnings when imported, so ours goes in front of it afterwards.
importlib.import_module("authlib.deprecate")
warnings.filterwarnings("ignore", message="The httpx module is deprecated")
