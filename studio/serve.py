"""`python -m studio.serve app.py [streamlit options]`: `streamlit run` for a shared server.
Streamlit checks a websocket's Origin against this machine's external IP, which it asks
checkip.amazonaws.com for, so any visitor could make the server contact an outside host;
here that lookup answers None. localhost, browser.serverAddress and the internal IP (found
from the routing table, no packet sent) are still allowed."""
import sys

from streamlit import net_util
from streamlit.web import cli


def main() -> int:
    net_util.get_external_ip = lambda: None
    sys.argv = ["streamlit", "run", *sys.argv[1:]]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
