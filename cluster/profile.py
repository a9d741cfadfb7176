"""Apparate-rs: N nodes of one hardware type on one experiment LAN, to run `worker`s.

Instructions:
Once the experiment is ready, open its "Manifest" tab, save the XML as `manifest.xml`, and
follow "Running on Cloudlab" in the apparate-rs repository's `cluster/README.md`:
`cluster preflight --hosts manifest.xml`, then `coordinator sweep --cluster ...` (or
`cluster deploy` / `cluster start` / `cluster stop` by hand). Node `node0` is a good place for
the coordinator; every node (node0 included) can run a worker. The LAN addresses are
10.10.1.1, 10.10.1.2, ... in node order.
"""

import geni.portal as portal
import geni.rspec.pg as pg

pc = portal.Context()

pc.defineParameter(
    "nodeCount", "Number of nodes", portal.ParameterType.INTEGER, 3,
    longDescription="Each node runs one worker; node0 can also run the coordinator.")
pc.defineParameter(
    "hwType", "Hardware type", portal.ParameterType.NODETYPE, "c220g5",
    longDescription="A Cloudlab node type, e.g. c220g5 (Wisconsin), d6515 or d7525 "
    "(Utah; d7525 has GPUs), m510 (Utah). All nodes get the same type.")
pc.defineParameter(
    "osImage", "Disk image", portal.ParameterType.IMAGE,
    "urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU22-64-STD",
    longDescription="The worker binary needs glibc at least as new as the machine it was "
    "built on: `cluster preflight` checks this.")
pc.defineParameter(
    "linkSpeed", "LAN speed (Kbps, 0 = any)", portal.ParameterType.INTEGER, 0,
    advanced=True)

params = pc.bindParameters()

if params.nodeCount < 1 or params.nodeCount > 250:
    pc.reportError(portal.ParameterError("Between 1 and 250 nodes", ["nodeCount"]))
pc.verifyParameters()

request = pc.makeRequestRSpec()

lan = None
if params.nodeCount > 1:
    lan = request.LAN("lan")
    if params.linkSpeed > 0:
        lan.bandwidth = params.linkSpeed
    # Nodes of one type may sit behind different switches.
    lan.best_effort = True
    lan.vlan_tagging = True

for i in range(params.nodeCount):
    node = request.RawPC("node%d" % i)
    node.hardware_type = params.hwType
    node.disk_image = params.osImage
    if lan is not None:
        iface = node.addInterface("eth1")
        iface.addAddress(pg.IPv4Address("10.10.1.%d" % (i + 1), "255.255.255.0"))
        lan.addInterface(iface)

pc.printRequestRSpec(request)
