"""trialkit.web"""
