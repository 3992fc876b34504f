"""Quantization Explorer: entry point and router.

The sidebar (data source, quantization settings) is drawn here, before the page,
so its widgets keep their values on every page and in the URL.
"""

from pathlib import Path

import streamlit as st

from ui import sidebar

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="Quantization Explorer", page_icon=":material/tune:", layout="wide")

pages = st.navigation(
    [
        st.Page(
            HERE / "pages/explore.py", title="Explore", icon=":material/insights:", url_path="explore", default=True
        ),
        st.Page(HERE / "pages/compare.py", title="Compare methods", icon=":material/compare:", url_path="compare"),
        st.Page(HERE / "pages/whatif.py", title="What-if", icon=":material/science:", url_path="whatif"),
        st.Page(HERE / "pages/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
    ]
)
sidebar.render()
pages.run()
