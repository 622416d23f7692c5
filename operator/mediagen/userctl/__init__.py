"""The command line for people: ``mediagen generate``, ``get`` and ``watch`` (also ``kubectl mediagen ...``).

It creates MediaGenerations and follows them, through the kubeconfig (the Kubernetes API) or through the HTTP
gateway with an API token, showing live progress with rich when the output is a terminal and plain lines when
it is not, and downloads the outputs. It is a client: it imports neither the operator nor the gateway.
"""
